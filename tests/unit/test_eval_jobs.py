"""Evaluations started from the app: progress, the finished summary, cancelling, one per domain, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.unit.test_eval_runner import QA, REPLIES, ByQuestion, chats, make_evaluation
from triptych.evaluate.store import RunDir, evals_dir
from triptych.qa import load_qa
from triptych.ui.eval_jobs import EvalJobs


@pytest.fixture
def records(tmp_path: Path) -> list:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QA), encoding="utf-8")
    return load_qa(path, "test")


def wait_until_done(job) -> None:  # type: ignore[no-untyped-def]
    job.thread.join(10)
    assert not job.running


def test_a_job_reports_progress_and_keeps_the_summary(tmp_path: Path, records: list) -> None:
    jobs = EvalJobs()
    job = jobs.start(make_evaluation(tmp_path, chats()), "hr", records, ["prompt", "rag"], split="test")
    wait_until_done(job)
    assert (job.status, job.done, job.total, job.error) == ("complete", 3, 3, None)
    assert job.summary is not None and job.summary["metrics"]["prompt"]["correct"] == pytest.approx(2 / 3, abs=1e-4)
    assert job.run_id == job.summary["run_id"] and job.last.startswith("q")
    assert jobs.get("hr") is job


def test_cancel_stops_the_run_which_the_same_evaluation_then_continues(tmp_path: Path, records: list) -> None:
    slow = {p: ByQuestion(replies=r, delay=0.2) for p, r in REPLIES.items()}  # each answer takes ~0.4 s
    jobs = EvalJobs()
    job = jobs.start(make_evaluation(tmp_path, slow), "hr", records, ["prompt", "rag"])
    with pytest.raises(ValueError, match="already in progress"):
        jobs.start(make_evaluation(tmp_path, chats()), "hr", records, ["prompt", "rag"])
    while job.done < 1:
        time.sleep(0.02)
    job.cancel.set()
    wait_until_done(job)
    assert job.status == "cancelled" and job.done < 3
    (run_path,) = evals_dir(make_evaluation(tmp_path, chats()).settings).iterdir()
    assert RunDir(run_path).summary()["status"] == "partial"

    again = chats()
    resumed = jobs.start(make_evaluation(tmp_path, again), "hr", records, ["prompt", "rag"])
    wait_until_done(resumed)
    assert resumed.status == "complete" and resumed.run_id == job.run_id
    assert len(again["prompt"].asked) == 3 - job.done  # only what the cancelled run had not finished


def test_a_failing_evaluation_keeps_its_error(tmp_path: Path, records: list) -> None:
    twice = [records[0], records[0]]
    job = EvalJobs().start(make_evaluation(tmp_path, chats()), "hr", twice, ["prompt"])
    wait_until_done(job)
    assert job.status == "failed" and "repeats question ids" in (job.error or "")
