"""The setup format: round trip, a content hash that ignores key order and names, refusals that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from triptych.settings import Settings
from triptych.setups import (
    SetupError,
    default_setup,
    diff,
    load_setup,
    parse,
    parse_text,
    save_setup,
    setup_names,
    setups_dir,
)


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **kw)  # type: ignore[call-arg]


def reversed_keys(value: Any) -> Any:
    """The same data with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    return value


def test_the_default_setup_is_todays_settings_and_prompt_files(tmp_path: Path) -> None:
    s = settings(tmp_path, top_k=5, temperature=0.0)
    setup = default_setup(s)
    assert setup.name == "default"
    assert setup.retrieval.top_k == 5
    assert "{company_role}" in setup.prompt.system
    assert setup.prompt_texts()["rag_user"] == (Path("graphs/prompts/rag_user.txt").read_text().strip())


def test_the_default_setup_follows_a_prompts_folder(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "finetuned_system.txt").write_text("Reply in five words.\n")
    assert default_setup(settings(tmp_path, prompts_dir=folder)).finetuned.system == "Reply in five words."


def test_round_trip_through_the_file_keeps_content_and_hash(tmp_path: Path) -> None:
    setup = default_setup(settings(tmp_path)).edited(
        {"retrieval.top_k": 4, "prompt.system": "Be terse, {company_role}."}
    )
    again = parse_text(setup.to_json())
    assert again == setup and again.hash == setup.hash
    assert json.loads(setup.to_json())["retrieval"]["top_k"] == 4  # human-readable JSON, not an opaque blob


def test_hash_is_the_same_whatever_the_key_order_and_the_name(tmp_path: Path) -> None:
    setup = default_setup(settings(tmp_path))
    data = setup.model_dump(mode="json")
    assert parse(reversed_keys(data)).hash == setup.hash
    assert setup.renamed("other-name", "another description").hash == setup.hash
    assert setup.edited({"retrieval.min_score": 0.3}).hash != setup.hash


def test_a_column_hash_changes_only_with_what_decides_that_column(tmp_path: Path) -> None:
    setup = default_setup(settings(tmp_path))
    edited = setup.edited({"prompt.system": "Answer as a pirate, {company_role}."})
    assert edited.column_hash("prompt") != setup.column_hash("prompt")
    assert [edited.column_hash(p) == setup.column_hash(p) for p in ("rag", "finetuned", "finetuned_rag")] == [True] * 3
    top4 = setup.edited({"retrieval.top_k": 4})
    assert top4.column_hash("rag") != setup.column_hash("rag")
    assert top4.column_hash("finetuned_rag") != setup.column_hash("finetuned_rag")
    assert top4.column_hash("prompt") == setup.column_hash("prompt")


@pytest.mark.parametrize(
    ("where", "field"),
    [((), "colour"), (("rag",), "topk"), (("retrieval",), "top_n"), (("prompt", "endpoint"), "api_key")],
)
def test_unknown_fields_are_refused_by_name(tmp_path: Path, where: tuple[str, ...], field: str) -> None:
    data = default_setup(settings(tmp_path)).model_dump(mode="json")
    node = data
    for part in where:
        node = node[part]
    node[field] = 1
    with pytest.raises(SetupError) as exc:
        parse(data)
    assert f"unknown field '{'.'.join((*where, field))}'" in str(exc.value)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"prompt.system": "You are {persona}."}, "prompt.system has an unknown placeholder {persona}"),
        ({"rag.user": "Q: {question} {passages}"}, "rag.user has an unknown placeholder {passages}"),
        ({"rag.system": "Answer.", "rag.user": "Question: {question}"}, "neither the system prompt nor the user"),
        ({"finetuned.system": "   \n"}, "finetuned.system is empty"),
        ({"finetuned.system": "Hi {question}"}, "allowed here: none"),
        ({"retrieval.chunk_overlap": 200}, "chunk_overlap (200) must be smaller than chunk_size"),
        ({"retrieval.top_k": 0}, "retrieval.top_k"),
    ],
)
def test_bad_prompts_and_values_are_refused_with_the_reason(tmp_path: Path, changes: dict, reason: str) -> None:
    with pytest.raises(SetupError) as exc:
        default_setup(settings(tmp_path)).edited(changes)
    assert reason in str(exc.value)


def test_a_rag_prompt_may_hold_the_passages_in_its_system_prompt(tmp_path: Path) -> None:
    setup = default_setup(settings(tmp_path)).edited(
        {"rag.system": "Answer from these passages:\n{context}", "rag.user": "Question: {question}"}
    )
    assert "{context}" in setup.prompt_texts()["rag_system"]


def test_saved_setups_are_listed_loaded_and_versioned(tmp_path: Path) -> None:
    s = settings(tmp_path)
    top4 = default_setup(s).edited({"retrieval.top_k": 4}).renamed("rag-top4")
    path = save_setup(s, top4)
    assert path == setups_dir(s) / "rag-top4.json"
    assert setup_names(s) == ["default", "rag-top4"]
    assert load_setup(s, "rag-top4") == top4
    top6 = top4.edited({"retrieval.top_k": 6})
    with pytest.raises(SetupError, match="with other content exists"):
        save_setup(s, top6)
    save_setup(s, top6, overwrite=True)
    assert load_setup(s, "rag-top4").retrieval.top_k == 6
    kept = setups_dir(s) / "versions" / f"rag-top4.{top4.hash}.json"
    assert parse_text(kept.read_text()).retrieval.top_k == 4  # the replaced version is not lost


def test_default_is_built_in_and_unknown_names_say_what_exists(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with pytest.raises(SetupError, match="built-in"):
        save_setup(s, default_setup(s))
    with pytest.raises(SetupError, match="no setup 'nope'; known: default"):
        load_setup(s, "nope")
    with pytest.raises(SetupError, match="not allowed"):
        default_setup(s).renamed("../escape")


def test_a_hand_edited_file_with_an_unknown_field_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    s = settings(tmp_path)
    data = default_setup(s).renamed("hand").model_dump(mode="json")
    data["retrieval"]["topk"] = 3
    setups_dir(s).mkdir(parents=True)
    (setups_dir(s) / "hand.json").write_text(json.dumps(data))
    with pytest.raises(SetupError) as exc:
        load_setup(s, "hand")
    assert "hand.json" in str(exc.value) and "unknown field 'retrieval.topk'" in str(exc.value)


def test_applying_a_setup_copies_the_settings(tmp_path: Path) -> None:
    s = settings(tmp_path)
    setup = default_setup(s).edited({"retrieval.top_k": 3, "generation.max_tokens": 64, "retrieval.hybrid": False})
    applied = setup.apply(s)
    assert (applied.top_k, applied.max_tokens, applied.hybrid) == (3, 64, False)
    assert (s.top_k, s.max_tokens, s.hybrid) == (8, 256, True)
    assert applied.data_dir == s.data_dir


def test_diff_names_each_changed_field_and_shows_prompt_lines(tmp_path: Path) -> None:
    a = default_setup(settings(tmp_path))
    b = a.edited({"retrieval.top_k": 4, "prompt.system": "You are {company_role}.\nBe brief."}).renamed("b")
    lines = diff(a, b)
    assert "retrieval.top_k: 8 -> 4" in lines
    assert "prompt.system:" in lines and "  +Be brief." in lines
    assert diff(a, a.renamed("same")) == []
