"""`triptych eval` on the command line: what it refuses and how, and the report/compare/list commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.unit.test_eval_runner import QA, chats, make_evaluation
from triptych.cli import app
from triptych.qa import load_qa

runner = CliRunner()


def test_a_missing_index_names_the_command_that_builds_it(clean_env: Path) -> None:
    folder = clean_env / "shared" / "legal_cuad"
    (folder / "docs").mkdir(parents=True)
    (folder / "qa_dev.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QA))
    result = runner.invoke(app, ["eval", "--domain", "legal_cuad", "--qa", str(folder / "qa_dev.jsonl")])
    assert result.exit_code == 2
    assert f"build it with `triptych ingest {folder / 'docs'} --domain legal_cuad`" in result.output


def test_a_demo_domain_without_qa_or_a_bad_pipeline_is_refused(clean_env: Path) -> None:
    result = runner.invoke(app, ["eval", "--domain", "nowhere"])
    assert result.exit_code == 2 and "pass --qa FILE.jsonl" in result.output
    result = runner.invoke(app, ["eval", "--domain", "x", "--pipelines", "prompt,magic"])
    assert result.exit_code == 2 and "unknown pipeline(s) magic" in result.output


def test_report_compare_and_list(clean_env: Path) -> None:
    qa_file = clean_env / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(q) + "\n" for q in QA))
    records = load_qa(qa_file, "test")
    # the fakes store runs under clean_env/data, which is where the CLI looks (TRIPTYCH_DATA_DIR=data)
    a = make_evaluation(Path("."), chats()).run("hr", records, ["prompt", "rag"])
    b = make_evaluation(Path("."), chats()).run("hr", records, ["prompt", "rag"], fresh=True)
    listed = runner.invoke(app, ["eval", "list"])
    assert listed.exit_code == 0 and a.run.run_id in listed.output and b.run.run_id in listed.output
    out = clean_env / "report.html"
    result = runner.invoke(app, ["eval", "report", a.run.run_id, b.run.run_id, "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and "Domain: hr" in out.read_text()
    result = runner.invoke(app, ["eval", "compare", a.run.run_id, b.run.run_id, "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.output)
    assert diff["shared_answers"] == 6 and diff["fixed"] == diff["broken"] == 0
    result = runner.invoke(app, ["eval", "compare", a.run.run_id, b.run.run_id])
    assert result.exit_code == 0 and "correct" in result.output
    missing = runner.invoke(app, ["eval", "report", "nope", "--html", str(out)])
    assert missing.exit_code == 2 and "no evaluation run 'nope'" in missing.output
