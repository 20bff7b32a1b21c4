"""The app's training queue and its worker processes, with a scripted trainer in place of LoRA.

The workers are real `python -m triptych.finetune.worker` processes talking to the queue through
their status files; only the training function is a fake (tests/unit/scripted_trainer.py), so these run
in seconds. tests/integration/test_training_worker.py runs the real trainer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from graphs.registry import PIPELINES
from tests.unit.scripted_trainer import scripted_trainer
from triptych.finetune import registry
from triptych.finetune.worker import EXIT_BUSY, JobStatus, lock_path, read_status, run_job, write_status
from triptych.settings import Settings
from triptych.ui.training_jobs import TrainingQueue

TRAINER = ["--trainer", "tests.unit.scripted_trainer:scripted_trainer"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpora = tmp_path / "corpora"
    for domain in ("alpha", "beta", "gamma"):
        (corpora / domain / "docs").mkdir(parents=True)
        (corpora / domain / "docs" / "a.md").write_text(f"# {domain}\n\nThe {domain} fact.\n")
    return Settings(_env_file=None, data_dir=tmp_path / "data", corpora_dir=corpora, finetune_max_steps=4,  # type: ignore[call-arg]
                    finetune_threads=1)  # fmt: skip


def queue_for(settings: Settings) -> TrainingQueue:
    return TrainingQueue(settings, worker_args=TRAINER)  # its workers import this checkout first


def wait_for(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_first_start_trains_each_missing_adapter_one_at_a_time_at_idle_priority(settings: Settings) -> None:
    (settings.runs_dir / "old").mkdir(parents=True)
    (settings.runs_dir / "old" / registry.ADAPTER_FILE).write_bytes(b"GGUF")
    registry.activate(settings, "beta", "old")  # beta already has its adapter
    queue = queue_for(settings)

    assert queue.train_missing(["alpha", "beta", "gamma"]) == ["alpha", "gamma"]
    assert queue.train_missing(["alpha", "beta", "gamma"]) == []  # a rerun or a second session queues nothing more
    assert queue.wait(60)

    runs = {}
    for domain in ("alpha", "gamma"):
        job = read_status(settings, domain)
        assert job is not None and (job.status, job.step, job.total_steps, job.error) == ("done", 4, 4, None)
        adapter = registry.active_adapter(settings, domain)
        assert adapter is not None and adapter.run_id == job.run_id
        runs[domain] = registry.read_run(settings, job.run_id)
        assert runs[domain]["corpus_sha256"] == registry.corpus_sha256(settings, domain)
        priority = runs[domain]["priority"]
        assert priority["threads"] == 1 and (
            priority["policy"] == getattr(os, "SCHED_IDLE", -1) or priority["nice"] == 19
        )
    assert runs["alpha"]["ended"] <= runs["gamma"]["started"]  # one after the other, in order
    assert registry.active_adapter(settings, "beta").run_id == "old"  # type: ignore[union-attr]


def test_the_fine_tuned_column_shows_the_training_progress(settings: Settings) -> None:
    write_status(settings, JobStatus("alpha", status="training", pid=os.getpid(), step=40, total_steps=120, eta_s=130))
    ctx = PIPELINES["finetuned"].build_context(settings, "alpha")
    assert ctx.unavailable == "training its adapter: step 40/120, about 2 min left"

    write_status(settings, JobStatus("alpha", status="queued", pid=os.getpid()))
    assert PIPELINES["finetuned"].build_context(settings, "alpha").unavailable == "its adapter is queued for training"

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_status(settings, JobStatus("alpha", status="training", pid=int(dead.stdout), step=3, total_steps=9))
    assert PIPELINES["finetuned"].build_context(settings, "alpha").unavailable == (
        "not fine-tuned yet: run `triptych finetune --domain alpha`"  # its worker died: nothing is training
    )


def test_cancel_stops_the_worker_and_the_run_resumes_where_it_stopped(settings: Settings) -> None:
    settings = settings.model_copy(update={"finetune_max_steps": 200})
    queue = queue_for(settings)
    queue.enqueue("slow-0.05")
    queue.enqueue("alpha")
    wait_for(lambda: (job := read_status(settings, "slow-0.05")) is not None and job.step >= 3)
    assert queue.current() == "slow-0.05" and queue.pending() == ["alpha"]
    with pytest.raises(ValueError, match="already queued or in progress"):
        queue.enqueue("slow-0.05")

    queue.cancel("slow-0.05")
    assert queue.wait(60)
    job = read_status(settings, "slow-0.05")
    assert job is not None and job.status == "cancelled" and 3 <= job.step < 200
    assert f"--resume {job.run_id}" in job.messages[-1]
    assert read_status(settings, "alpha").status == "done"  # type: ignore[union-attr] # the queue went on

    queue.enqueue("slow-0.05", resume=job.run_id)
    wait_for(lambda: read_status(settings, "slow-0.05").step > job.step + 2)  # type: ignore[union-attr]
    queue.cancel("slow-0.05")
    assert queue.wait(60)
    again = read_status(settings, "slow-0.05")
    assert again.run_id == job.run_id  # type: ignore[union-attr]
    assert registry.read_run(settings, job.run_id)["resumed_from"] == job.step  # type: ignore[index]


def test_the_next_start_resumes_a_run_that_stopping_the_app_interrupted(settings: Settings) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    checkpoint = settings.runs_dir / "20261130-100000-alpha" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text(json.dumps({"step": 3}))
    write_status(settings, JobStatus("alpha", status="training", pid=int(dead.stdout), run_id="20261130-100000-alpha",
                                     step=3, total_steps=4))  # fmt: skip
    queue = queue_for(settings)
    assert queue.train_missing(["alpha"]) == ["alpha"]
    assert queue.wait(60)
    job = read_status(settings, "alpha")
    assert job is not None and (job.status, job.run_id) == ("done", "20261130-100000-alpha")
    assert registry.read_run(settings, job.run_id)["resumed_from"] == 3  # type: ignore[index]


def test_a_cancel_before_training_started_ends_the_worker_at_once(settings: Settings) -> None:
    queue = queue_for(settings)
    queue.enqueue("stall")
    wait_for(lambda: "scoring the base model" in ((job := read_status(settings, "stall")) and job.messages or [""])[-1])
    queue.cancel("stall")
    assert queue.wait(10)  # not after the minute the trainer would still spend before its first step
    job = read_status(settings, "stall")
    assert job.status == "cancelled" and job.messages[-1] == "cancelled before training started"  # type: ignore[union-attr]


def test_a_failed_or_crashed_run_is_reported_and_the_queue_goes_on(settings: Settings) -> None:
    queue = queue_for(settings)
    for domain in ("broken", "crash", "alpha"):
        queue.enqueue(domain)
    assert queue.wait(60)
    broken, crash = read_status(settings, "broken"), read_status(settings, "crash")
    assert broken.status == "failed" and broken.error == "ValueError: no QA for domain broken"  # type: ignore[union-attr]
    assert crash.status == "failed" and "exited with code 7" in crash.error  # type: ignore[union-attr,operator]
    assert read_status(settings, "alpha").status == "done"  # type: ignore[union-attr]
    assert PIPELINES["finetuned"].build_context(settings, "broken").unavailable == (
        "its training failed: ValueError: no QA for domain broken"
    )


def test_a_domain_is_never_trained_by_two_processes_at_once(settings: Settings) -> None:
    lock_path(settings, "alpha").parent.mkdir(parents=True)
    with FileLock(str(lock_path(settings, "alpha"))):  # another process's worker holds it
        assert run_job(settings, "alpha", trainer=scripted_trainer) == EXIT_BUSY
    assert read_status(settings, "alpha") is None and registry.active_adapter(settings, "alpha") is None

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:  # another app's worker trains beta: this app's first start leaves it alone
        write_status(settings, JobStatus("beta", status="training", pid=other.pid, step=1, total_steps=9))
        assert queue_for(settings).train_missing(["beta"]) == []
    finally:
        other.kill()
        other.wait()


def test_a_changed_corpus_makes_the_adapter_stale(settings: Settings) -> None:
    assert run_job(settings, "alpha", trainer=scripted_trainer) == 0
    assert not registry.is_stale(settings, "alpha")
    (settings.corpora_dir / "alpha" / "docs" / "a.md").write_text("# alpha\n\nThe alpha fact, revised.\n")
    assert registry.is_stale(settings, "alpha")
