"""The run store shared by history, evaluation and fine-tuning runs."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from triptych.runstore import (
    MASK,
    mask_secrets,
    new_run_id,
    parse_run_id,
    read_json,
    settings_snapshot,
    write_json,
)
from triptych.settings import load_settings

NOON = datetime(2026, 11, 22, 14, 35, 1, tzinfo=UTC)


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "run.json"
    write_json(path, {"a": "é"})
    write_json(path, {"b": [1, 2]})
    assert read_json(path) == {"b": [1, 2]}
    assert "é" not in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        write_json(path, {"not json": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_new_run_ids_start_with_the_time_and_never_reuse_a_taken_one(tmp_path: Path) -> None:
    assert new_run_id("hr_handbook", now=NOON) == "20261122-143501-hr_handbook"
    (tmp_path / "20261122-143501-hr_handbook").mkdir()
    (tmp_path / "20261122-143501-hr_handbook-2.json").write_text("{}")
    assert new_run_id("hr_handbook", tmp_path, now=NOON) == "20261122-143501-hr_handbook-3"


def test_claimed_run_ids_are_never_shared_by_two_runs_started_in_the_same_second(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: new_run_id("hr_handbook", root, now=NOON, claim=True), range(8)))
    assert len(set(ids)) == 8
    assert sorted(p.name for p in root.iterdir()) == sorted(ids)  # each one's folder exists, made for it


@pytest.mark.parametrize(
    ("run_id", "name"),
    [
        ("20261122-143501-hr_handbook", "hr_handbook"),  # current format
        ("20261122-143501-hr_handbook-2", "hr_handbook-2"),
        ("hr_handbook-20261122-143501", "hr_handbook"),  # evaluation runs, earlier
        ("hr_handbook-20261122-143501-3", "hr_handbook"),
        ("20261122T143501Z-0a1b2c3d", "0a1b2c3d"),  # comparisons, earlier
    ],
)
def test_run_ids_of_every_format_parse_to_their_time_and_name(run_id: str, name: str) -> None:
    parsed = parse_run_id(run_id)
    assert parsed is not None
    assert (parsed.created, parsed.name) == (NOON, name)


@pytest.mark.parametrize(
    "text", ["", "../etc/passwd", "20261122-143501-../x", "x/20261122-143501", "20261399-143501-a"]
)
def test_anything_else_is_not_a_run_id(text: str) -> None:
    assert parse_run_id(text) is None


def test_secrets_are_masked_and_key_variable_names_kept() -> None:
    data = {"api_key": "sk-1", "api_key_env": "OPENAI_API_KEY", "nested": [{"client_secret": "s"}], "empty_key": None}
    assert mask_secrets(data) == {
        "api_key": MASK,
        "api_key_env": "OPENAI_API_KEY",
        "nested": [{"client_secret": MASK}],
        "empty_key": None,
    }


def test_settings_snapshot_is_json_and_names_key_variables(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TRIPTYCH_PROMPT__API_KEY_ENV", "MY_KEY")
    snapshot = settings_snapshot(load_settings())
    assert snapshot["prompt"]["api_key_env"] == "MY_KEY"
    assert snapshot["max_tokens"] == 256
    json.dumps(snapshot)
