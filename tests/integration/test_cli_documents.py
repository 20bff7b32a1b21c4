"""`triptych ingest` and `triptych index list/delete` end to end, with the real embedding model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from triptych.cli import app
from triptych.retrieval import retriever_for
from triptych.settings import load_settings

pytestmark = pytest.mark.integration


def test_ingest_list_delete(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_CHROMA_PATH", str(clean_env / "indexes"))
    docs = clean_env / "docs"
    (docs / "policies").mkdir(parents=True)
    (docs / "policies" / "leave.md").write_text(
        "# Annual leave\n\nEvery employee receives 28 vacation days per calendar year.\n"
    )
    (docs / "travel.txt").write_text("Travel policy\n\nRail journeys longer than four hours go first class.\n")
    (docs / "junk.txt").write_bytes(bytes(range(256)) * 4)
    runner = CliRunner()

    first = runner.invoke(app, ["ingest", str(docs), "--domain", "hr_cli"])
    assert first.exit_code == 1, first.output  # a refused file makes the exit status 1
    assert "3 files: 2 added, 0 replaced, 0 unchanged, 1 refused" in first.output
    assert "refused junk.txt: named .txt but the content is binary data" in first.output
    assert "all-MiniLM-L6-v2" in first.output
    originals = clean_env / "data" / "originals" / "hr_cli"  # kept by content hash, for fine-tuning
    assert len(list(originals.iterdir())) == 2

    again = runner.invoke(app, ["ingest", str(docs), "-d", "hr_cli"])
    assert "3 files: 0 added, 0 replaced, 2 unchanged, 1 refused" in again.output
    # a folder's files are stored under their path inside it, a file given by itself under its name
    single = runner.invoke(app, ["ingest", str(docs / "travel.txt"), "-d", "hr_cli"])
    assert single.exit_code == 0, single.output
    assert "1 file: 0 added, 0 replaced, 1 unchanged, 0 refused" in single.output

    retriever = retriever_for(load_settings(), "hr_cli")  # the real model, as the RAG pipeline uses it
    top = retriever.search("How many vacation days do employees get?")
    assert top and top[0].doc_id == "policies/leave.md" and top[0].section == "Annual leave"
    assert retriever.search("first class train trips")[0].doc_id == "travel.txt"

    listed = runner.invoke(app, ["index", "list"])
    assert listed.exit_code == 0, listed.output
    assert "hr_cli" in listed.output and "all-MiniLM-L6-v2 (current)" in listed.output
    docs_listed = runner.invoke(app, ["index", "list", "--domain", "hr_cli"])
    assert "policies/leave.md" in docs_listed.output and "travel.txt" in docs_listed.output

    missing = runner.invoke(app, ["index", "delete", "hr_cli", "--doc", "nope.md"])
    assert missing.exit_code == 2 and "no document 'nope.md'" in missing.output
    removed = runner.invoke(app, ["index", "delete", "hr_cli", "--doc", "travel.txt"])
    assert removed.exit_code == 0 and "deleted travel.txt" in removed.output
    assert [r.doc_id for r in retriever.index.documents()] == ["policies/leave.md"]
    assert [p.suffix for p in originals.iterdir()] == [".md"]  # travel.txt's original went with it

    aborted = runner.invoke(app, ["index", "delete", "hr_cli"], input="n\n")
    assert aborted.exit_code == 1  # answered no: nothing deleted
    dropped = runner.invoke(app, ["index", "delete", "hr_cli", "--yes"])
    assert dropped.exit_code == 0 and "deleted domain hr_cli" in dropped.output
    assert "no indexes" in runner.invoke(app, ["index", "list"]).output
    assert not originals.exists()

    bad = runner.invoke(app, ["ingest", str(docs), "--domain", "bad name"])
    assert bad.exit_code == 2 and "invalid domain name" in bad.output
