"""`triptych index build/list/delete` for index variants, end to end with the real embedding model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from triptych.cli import app
from triptych.index import VariantNotBuiltError
from triptych.retrieval import retriever_for
from triptych.settings import load_settings

pytestmark = pytest.mark.integration

LEAVE = (
    "# Annual leave\n\nEvery employee receives 28 vacation days per calendar year. Unused days may be carried "
    "over until the end of March; requests go through the HR portal two weeks ahead.\n\n"
    "## Parental leave\n\nParents get 16 weeks of paid parental leave, to be taken within two years of the birth.\n"
)
TRAVEL = "Travel policy\n\nRail journeys longer than four hours go first class. Flights need a manager's approval.\n"


def test_build_a_second_chunking_beside_the_first_compare_and_delete(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIPTYCH_CHROMA_PATH", str(clean_env / "indexes"))
    docs = clean_env / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(LEAVE)
    (docs / "travel.txt").write_text(TRAVEL)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(docs), "--domain", "hr_var"]).exit_code == 0
    (docs / "leave.md").unlink()  # the user's copy is gone: the kept original is what gets re-chunked

    monkeypatch.setenv("TRIPTYCH_CHUNK_SIZE", "32")
    monkeypatch.setenv("TRIPTYCH_CHUNK_OVERLAP", "4")
    small = load_settings()
    with pytest.raises(VariantNotBuiltError, match="triptych index build --domain hr_var --chunk-size 32"):
        retriever_for(small, "hr_var")

    built = runner.invoke(app, ["index", "build", "--domain", "hr_var", "--chunk-size", "32", "--chunk-overlap", "4"])
    assert built.exit_code == 0, built.output
    assert "hr_var (32/4 tokens · all-MiniLM-L6-v2): 2 added" in built.output

    listed = runner.invoke(app, ["index", "list"])
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if "hr_var" in line]
    assert len(rows) == 2
    assert any("32/4" in r and "(current)" in r for r in rows)  # TRIPTYCH_CHUNK_SIZE=32 here
    assert any("160/24" in r and "(current)" not in r for r in rows)

    question = "How many weeks of parental leave do parents get?"
    new = retriever_for(small, "hr_var")
    old = retriever_for(small.model_copy(update={"chunk_size": 160, "chunk_overlap": 24}), "hr_var")
    assert new.index.name != old.index.name
    assert new.search(question)[0].doc_id == old.search(question)[0].doc_id == "leave.md"
    assert new.index.count_chunks() > old.index.count_chunks()
    assert "16 weeks" in new.search(question, 3)[0].text or "16 weeks" in new.search(question, 3)[1].text

    no = runner.invoke(app, ["index", "delete", "hr_var", "--chunk-size", "32", "--chunk-overlap", "4"], input="n\n")
    assert no.exit_code == 1 and "the index the current settings use" in no.output  # in use: asked, kept
    gone = runner.invoke(app, ["index", "delete", "hr_var", "--chunk-size", "160", "--chunk-overlap", "24"])
    assert gone.exit_code == 0, gone.output  # not in use: deleted without a question
    assert new.search(question)[0].doc_id == "leave.md"  # the other one still answers
    rows = [line for line in runner.invoke(app, ["index", "list"]).output.splitlines() if "hr_var" in line]
    assert len(rows) == 1 and "32/4" in rows[0]
    again = runner.invoke(app, ["index", "delete", "hr_var", "--chunk-size", "160", "--chunk-overlap", "24"])
    assert again.exit_code == 2 and "has no index 160/24" in again.output
