"""The stakeholder page: one self-contained HTML file with methods, examples, cost, and places for the other moments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphs.result import PipelineResult
from tests.stored_runs import Answer, chunk, write_adapter_run, write_eval_run
from triptych.cli import app
from triptych.cost_sources import record_index_build
from triptych.history import save_comparison
from triptych.ingest import FileOutcome, IngestReport
from triptych.qa import QARecord
from triptych.settings import Settings
from triptych.stakeholder import SECTIONS, Section, render_report

QUESTIONS = [
    QARecord("q1", "Which weekday is the anchor day?", "Tuesday", doc_ids=("remote_work",), split="test"),
    QARecord("q2", "How much is the on-call allowance?", "EUR 1,800", doc_ids=("on_call",), split="test"),
    QARecord("q3", "Who signs <b>expense</b> claims?", "the line manager", doc_ids=("expenses",), split="test"),
]
ANCHOR = chunk(1, "remote_work", "## Office days\n\n- **Tuesday** is the anchor day. <script>alert(1)</script>")


def answers() -> dict[str, dict[str, Answer]]:
    return {
        "q1": {"prompt": Answer("Monday."), "rag": Answer("Tuesday [1].", total_s=3.0, sources=(ANCHOR,)),
               "finetuned": Answer("Tuesday.")},
        "q2": {"prompt": Answer("EUR 1,800."), "rag": Answer("EUR 1,800 [1].", total_s=3.0),
               "finetuned": Answer("EUR 1,800.")},
        "q3": {"prompt": Answer("HR."), "rag": Answer("The line manager [1].", total_s=3.0),
               "finetuned": Answer("The CFO.")},
    }  # fmt: skip


def stored(tmp_path: Path) -> Settings:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", cost_machine_usd_per_hour=3.6)  # type: ignore[call-arg]
    write_eval_run(settings, "hr", QUESTIONS, answers(), run_id="20261130-120000-hr")
    results = {
        "prompt": PipelineResult("prompt", "Prompt", answer="Ask HR <img src=x onerror=alert(1)>.", total_s=2.0),
        "rag": PipelineResult("rag", "RAG", answer="Two days a month [1].", sources=[ANCHOR], total_s=3.0),
        "finetuned": PipelineResult("finetuned", "Fine-tuned", error="model server stopped"),
    }
    save_comparison(settings, "How much leave do I accrue?", "hr", results)
    report = IngestReport("hr", settings.embedding_model, seconds=20.0)
    report.outcomes.append(FileOutcome("a.md", "a.md", "added", chunks=200, bytes=1))
    record_index_build(settings, report)
    write_adapter_run(settings, "hr", "20261130-100000-hr", {"wall_s": 900.0})
    return settings


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}" class="(\w+)">(.*?)</section>', page, flags=re.S)
    assert found, f"no section {section_id}"
    return f"{found[1]}:{found[2]}"


def test_the_page_holds_every_section_and_stands_alone(tmp_path: Path) -> None:
    page = render_report(stored(tmp_path), "hr")

    methods = section(page, "methods")
    assert methods.startswith("filled:") and "20261130-120000-hr" in methods
    assert "95 % interval" in methods and "Correct answers, with 95 % intervals" in methods
    assert "RAG" in methods and "Fine-tuned" in methods and "vs" in methods  # the pairwise differences

    examples = section(page, "examples")
    assert examples.count("<div class=example>") == 3
    assert "How much leave do I accrue?" in examples  # the history first ...
    assert "Evaluation question q1" in examples  # ... then the latest run, telling questions first
    assert "Error: model server stopped" in examples
    assert "Office days Tuesday is the anchor day." in examples  # sources read as on the app's cards: no ##, - or **
    assert "✓ correct" in examples and "✗ wrong" in examples

    cost = section(page, "cost")
    assert cost.startswith("filled:") and 'class="cost-line"' in cost and "break-even" in cost
    assert "after about 440 questions (about 15 a day over 30 days)" in cost  # the crossing, also a day

    assert section(page, "change-a-fact") == (
        "empty:<h2>Change a fact</h2><p>No change-a-fact race of hr yet: on Compare, follow &#x27;Change a fact&#x27; "
        "and run the scripted change.</p>"
    )
    assert section(page, "blind-vote").startswith("empty:<h2>Blind vote</h2>")
    assert [m for m in re.findall(r'<section id="([\w-]+)"', page)] == [s.id for s in SECTIONS]

    # self-contained and inert: nothing fetched, no script, text from models and documents escaped
    assert "<script" not in page and "<img" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(?!#)', page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Who signs &lt;b&gt;expense&lt;/b&gt; claims?" in page
    assert "@media print" in page and "@page" in page


def test_a_domain_with_nothing_stored_says_how_to_fill_each_section(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    page = render_report(settings, "legal")
    assert "No evaluation run of legal yet: run `triptych eval --domain legal`" in page
    assert section(page, "cost").startswith("empty:")
    assert 'class="filled"' not in page


def test_a_new_section_is_one_function_in_the_list(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    votes = Section("blind-vote", "Blind vote", lambda s, d: f"<p>42 votes on {d}</p>", "none")
    page = render_report(settings, "hr", [votes])
    assert section(page, "blind-vote") == "filled:<h2>Blind vote</h2><p>42 votes on hr</p>"


def test_report_command_writes_the_page(tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = stored(tmp_path)
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "hr.html"
    result = CliRunner().invoke(app, ["report", "--domain", "hr", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "with: Which method answers best, Three example questions, Cost and break-even" in result.output
    assert "not recorded yet: Change a fact, Blind vote" in result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    result = CliRunner().invoke(app, ["report", "--domain", "hrr", "--html", str(out)])
    assert result.exit_code == 2 and "nothing is known about domain 'hrr'; domains: hr" in result.output
    result = CliRunner().invoke(app, ["report", "--domain", "hr", "--html", str(tmp_path / "no" / "x.html")])
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_the_blind_vote_section_shows_the_domains_leaderboard_with_intervals(tmp_path: Path) -> None:
    from triptych import votes
    from triptych.history import HistoryRecord

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    results = {
        pid: PipelineResult(pid, label, answer=text, total_s=1.0)
        for pid, label, text in (("prompt", "Prompt", "Monday."), ("rag", "RAG", "Tuesday [1]."))
    }
    for i, (viewer, choice) in enumerate((("v1", "rag"), ("v2", "rag"), ("v3", "prompt"), ("v4", votes.NONE))):
        rec = HistoryRecord(f"20261130-12000{i}-abcdef0{i}", "2026-11-30T12:00:00+00:00", "Anchor day?", "hr",
                            list(results), results, {})  # fmt: skip
        assert votes.cast_vote(settings, rec, viewer, choice).stored
    page = render_report(settings, "hr")
    html = section(page, "blind-vote")
    assert html.startswith("filled:") and "4 votes" in html
    rows = re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+) %</td>", html)
    assert rows[0] == ("RAG", "2", "4", "50")  # 2 of the 4 ballots that held RAG
    assert ("Prompt", "1", "4", "25") in rows
    assert section(render_report(settings, "other"), "blind-vote").startswith("empty:")  # another domain's votes


def test_the_change_a_fact_section_shows_the_latest_race_of_the_domain(tmp_path: Path) -> None:
    from triptych import live_change

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]

    def side(answer: str, old: bool, new: bool) -> dict:
        return {"answer": answer, "states_old": old, "states_new": new, "ttft_s": 1.0, "total_s": 2.0, "error": None}

    race = {
        "format": 1, "id": "r1", "at": "2026-11-30T20:00:00+00:00", "domain": "hr", "doc_id": "shutdown_policy",
        "question": "Which weeks is the <shutdown>?", "old_text": "weeks 32 and 33", "new_text": "weeks 30 and 31",
        "old_answer": "32 and 33", "new_answer": "30 and 31", "reindex_s": 0.85, "chunks": {"before": 3, "after": 3},
        "rag_new_fact_s": 3.2,
        "columns": {
            "rag": {"label": "RAG", "before": side("weeks 32 and 33 [1]", True, False),
                    "after": side("weeks 30 and 31 [1]", False, True)},
            "finetuned": {"label": "Fine-tuned", "before": side("weeks 32 and 33", True, False),
                          "after": side("weeks 32 and 33", True, False)},
        },
        "retrain": {"run_id": "run1", "kind": "local", "s_per_step": 12.5, "steps": 40, "train_s": 500.0,
                    "run_wall_s": 520.0, "trained_tokens": None, "cost_usd": None, "price_note": ""},
    }  # fmt: skip
    live_change.append_race(settings, {**race, "id": "r0", "rag_new_fact_s": None})  # an older race
    live_change.append_race(settings, race)
    live_change.append_race(settings, {**race, "id": "r2", "domain": "other"})  # another domain's
    html = section(render_report(settings, "hr"), "change-a-fact")
    assert html.startswith("filled:")
    assert "RAG stated the new fact 3.2 s after the change (re-indexing one document: 0.8 s)" in html
    assert "12.5 s a step × 40 steps" in html
    assert "<td>RAG</td><td>weeks 32 and 33 [1]</td><td>weeks 30 and 31 [1]</td><td>the new fact</td>" in html
    assert "<td>Fine-tuned</td><td>weeks 32 and 33</td><td>weeks 32 and 33</td><td>the old fact</td>" in html
    assert "&lt;shutdown&gt;" in html and "<shutdown>" not in html  # text from documents and users is escaped
    assert section(render_report(settings, "nothing"), "change-a-fact").startswith("empty:")
