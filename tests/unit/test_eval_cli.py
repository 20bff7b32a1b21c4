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


def strip_new_keys(run_path: Path) -> None:
    """Make a stored run look like one from before seen/unseen, intervals and miss causes were recorded."""
    summary = json.loads((run_path / "summary.json").read_text())
    summary.pop("comparisons")
    for m in summary["metrics"].values():
        for key in ("by_training", "correct_ci95", "scored", "miss_causes"):
            m.pop(key, None)
    (run_path / "summary.json").write_text(json.dumps(summary))
    rows = [json.loads(line) for line in (run_path / "answers.jsonl").read_text().splitlines()]
    for r in rows:
        for key in ("adapter_run", "seen_in_training", "miss_cause"):
            r.pop(key)
    (run_path / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_summary_headlines_unseen_questions_with_intervals_pairs_and_causes(clean_env: Path, capsys) -> None:
    from tests.unit.test_eval_training_overlap import run
    from triptych.cli_eval import print_summary

    outcome = run(clean_env)
    print_summary(outcome.summary)
    out = capsys.readouterr().out
    assert "unseen n=2 · seen n=2" in out and "n=4" in out  # finetuned split, rag over all four
    assert "50.0 % | seen 50.0 % (n=2)" in out  # finetuned's correct: unseen headline, seen beside
    assert "correct 95 % CI" in out and "9.4–90.5 %" in out  # Wilson on 1 of 2
    assert "finetuned vs rag (questions unseen in training): 50.0 % vs 50.0 %" in out
    assert "no clear difference at n = 2" in out
    assert "finetuned: unseen fact 1, seen but wrong 1" in out and "rag: refused 1" in out


def test_old_runs_without_the_new_figures_still_report_and_compare(clean_env: Path, capsys) -> None:
    from tests.unit.test_eval_training_overlap import run
    from triptych.cli_eval import print_summary

    new = run(clean_env)
    old = run(clean_env)
    strip_new_keys(old.run.path)
    print_summary(json.loads((old.run.path / "summary.json").read_text()))
    out = capsys.readouterr().out
    assert "seen / unseen not recorded" in out and "seen: not recorded" in out
    assert "Differences between pipelines (paired bootstrap 95 % CI, McNemar exact p):\n  not recorded" in out
    assert "finetuned: not recorded" in out

    result = runner.invoke(app, ["eval", "compare", old.run.run_id, new.run.run_id])
    assert result.exit_code == 0, result.output
    assert "finetuned, questions seen in training: not recorded" in result.output
    diff = json.loads(runner.invoke(app, ["eval", "compare", old.run.run_id, new.run.run_id, "--json"]).output)
    assert diff["basis"] == {"finetuned": "all", "rag": "all"} and diff["seen"] == {"finetuned": "not recorded"}

    page = clean_env / "report.html"
    result = runner.invoke(app, ["eval", "report", old.run.run_id, new.run.run_id, "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "Differences between pipelines: not recorded" in html
    assert "<h3>Why answers missed</h3><p>not recorded.</p>" in html
    # the new run's section: unseen headline, pairs with intervals, a stacked bar per pipeline
    assert "unseen n=2 · seen n=2" in html and "McNemar p" in html and "Wrong answers by cause" in html
    assert "<title>hr · finetuned: unseen fact 1</title>" in html


def test_two_new_runs_compare_fine_tuning_on_unseen_questions(clean_env: Path) -> None:
    from tests.unit.test_eval_training_overlap import run

    a, b = run(clean_env), run(clean_env)
    diff = json.loads(runner.invoke(app, ["eval", "compare", a.run.run_id, b.run.run_id, "--json"]).output)
    assert diff["basis"] == {"finetuned": "unseen", "rag": "all"}
    assert diff["metrics"]["finetuned"]["correct"] == {"a": 0.5, "b": 0.5, "change": 0.0}
    assert diff["seen"]["finetuned"]["n"] == {"a": 2, "b": 2}
    listed = runner.invoke(app, ["eval", "list"])
    assert "finetuned 50.0 % (unseen)" in listed.output


def test_eval_scores_the_hybrid_by_default_once_the_domain_has_a_with_passages_adapter(clean_env, monkeypatch) -> None:  # noqa: ANN001
    import triptych.cli_eval as cli_eval
    from tests.unit.test_hybrid_column import finished_run
    from triptych.settings import Settings

    asked: list[list[str]] = []

    def capture(settings, models, pipelines, **_kw):  # noqa: ANN001, ANN003, ANN202 - stops before any model runs
        asked.append(list(pipelines))
        raise SystemExit(0)

    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(Path(__file__).parents[2] / "corpora"))  # the demo test splits
    monkeypatch.setattr(cli_eval, "make_evaluation", capture)
    monkeypatch.setattr(cli_eval, "check_index", lambda *_a: None)
    runner.invoke(app, ["eval", "--domain", "hr_handbook", "--split", "test"])
    finished_run(Settings(_env_file=None), "reads-1", "with-passages")  # type: ignore[call-arg]
    runner.invoke(app, ["eval", "--domain", "hr_handbook", "--split", "test"])
    runner.invoke(app, ["eval", "--domain", "support_kb", "--split", "test"])
    assert asked == [["prompt", "rag", "finetuned"], ["prompt", "rag", "finetuned", "finetuned_rag"],
                     ["prompt", "rag", "finetuned"]]  # fmt: skip
