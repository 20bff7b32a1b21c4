"""App-started fine-tuning runs: progress is recorded, failures kept, one run per domain at a time."""

from __future__ import annotations

import threading

import pytest

from triptych.finetune import runs
from triptych.finetune.train import Progress
from triptych.settings import Settings
from triptych.ui.training_jobs import TrainingJobs


def test_job_records_progress_and_result(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def fake_run_local(settings, domain, config, *, on_progress, on_status, cancel, **kw):  # type: ignore[no-untyped-def]
        on_status("loading")
        on_progress(Progress(step=3, total_steps=10, epoch=0.3, loss=1.5, elapsed_s=1, eta_s=2, tokens_per_s=9))
        release.wait(5)
        return {"run_id": "r1", "status": "done"}

    monkeypatch.setattr(runs, "run_local", fake_run_local)
    jobs = TrainingJobs()
    job = jobs.start(Settings(_env_file=None), "hr")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="already in progress"):
        jobs.start(Settings(_env_file=None), "hr")  # type: ignore[call-arg]
    release.set()
    job.thread.join(5)  # type: ignore[union-attr]
    assert (job.step, job.total_steps, job.loss, job.status) == (3, 10, 1.5, "done")
    assert job.messages == ["loading"] and jobs.get("hr") is job


def test_job_keeps_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **kw):  # type: ignore[no-untyped-def]
        raise ValueError("no QA for domain hr")

    monkeypatch.setattr(runs, "run_local", boom)
    job = TrainingJobs().start(Settings(_env_file=None), "hr")  # type: ignore[call-arg]
    job.thread.join(5)  # type: ignore[union-attr]
    assert job.status == "failed" and job.error == "ValueError: no QA for domain hr"
