"""The app's training queue: fine-tuning runs one after the other, each in a worker process of its own.

Training takes minutes on a CPU, and torch in the app's own process would take the cores from the
answers, so every run is `python -m triptych.finetune.worker` at idle priority (see its docstring
for the status-file protocol). The queue is process-wide (one per app, `resources.training_queue`):
on first start it holds each demo domain whose adapter is missing, and the Fine-tune page adds to
it. One worker runs at a time; a domain that another process trains is not started twice (the
worker's per-domain lock). Stopping the app stops the worker, which keeps a checkpoint: the next
start's queue resumes that run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import triptych
from triptych import runstore
from triptych.finetune import registry
from triptych.finetune.worker import (
    ACTIVE,
    EXIT_BUSY,
    JobStatus,
    jobs_dir,
    read_status,
    request_cancel,
    write_status,
)
from triptych.settings import Settings

LOG_TAIL = 1500  # characters of the worker's log kept in a failed job's error


@dataclass(frozen=True)
class QueuedRun:
    """A domain waiting to be trained."""

    domain: str
    resume: str | None = None  # continue this run from its checkpoint
    only_if_missing: bool = False  # skip it if an adapter appeared meanwhile (first-start training)
    mode: str = "closed-book"  # with-passages: the hybrid column's adapter


class TrainingQueue:
    """Domains to fine-tune, trained one at a time by worker processes, in the order they were added."""

    def __init__(self, settings: Settings, *, worker_args: Sequence[str] = (), env: dict[str, str] | None = None):
        """`worker_args` are added to every worker's command line (e.g. `--max-steps 2` in tests)."""
        self.settings = settings
        self._worker_args = list(worker_args)
        self._env = env
        self._lock = threading.Lock()
        self._pending: list[QueuedRun] = []
        self._current: QueuedRun | None = None
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def pending(self) -> list[str]:
        """Domains waiting, next first."""
        with self._lock:
            return [q.domain for q in self._pending]

    def current(self) -> str | None:
        """The domain whose worker runs now."""
        with self._lock:
            return self._current.domain if self._current else None

    def status(self, domain: str) -> JobStatus | None:
        """The domain's latest job, as its status file says (written by this queue, its worker or another app)."""
        return read_status(self.settings, domain)

    def enqueue(
        self, domain: str, *, resume: str | None = None, front: bool = False, mode: str = "closed-book"
    ) -> None:
        """Train `domain` after the runs before it (first with `front`); ValueError if it is queued or training.

        `mode` is how the examples look (closed-book or with-passages); a resumed run keeps its own.
        """
        with self._lock:
            if self._holds(domain) or self._busy_elsewhere(self.status(domain)):
                raise ValueError(f"a training run for {domain} is already queued or in progress")
            self._add(QueuedRun(domain, resume, mode=mode), front)

    def train_missing(self, domains: Iterable[str]) -> list[str]:
        """Queue each domain without an active adapter (resuming its interrupted run, if any); the ones queued."""
        added = []
        with self._lock:
            for domain in domains:
                job = self.status(domain)
                if self._holds(domain) or registry.active_adapter(self.settings, domain) or self._busy_elsewhere(job):
                    continue
                self._add(QueuedRun(domain, self._resumable(job), only_if_missing=True), front=False)
                added.append(domain)
        return added

    def cancel(self, domain: str) -> None:
        """Drop a waiting domain, or stop its running worker at the next step (its run stays resumable)."""
        with self._lock:
            waiting = [q for q in self._pending if q.domain == domain]
            self._pending = [q for q in self._pending if q.domain != domain]
            running = self._current is not None and self._current.domain == domain
        if waiting:
            write_status(self.settings, JobStatus(domain, status="cancelled", messages=["removed from the queue"]))
        if running or not waiting:
            request_cancel(self.settings, domain)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty and no worker runs; False on timeout."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """Empty the queue and stop the running worker (it checkpoints first)."""
        with self._lock:
            self._pending.clear()
            current = self._current
        if current is not None:
            request_cancel(self.settings, current.domain)

    def _holds(self, domain: str) -> bool:
        return (self._current is not None and self._current.domain == domain) or any(
            q.domain == domain for q in self._pending
        )

    def _busy_elsewhere(self, job: JobStatus | None) -> bool:
        """Whether a job is queued or training in another live process (or by a worker of this one)."""
        if job is None or not job.active:
            return False
        return not (job.status == "queued" and job.pid == os.getpid())  # our own queue's entry was lost

    def _resumable(self, job: JobStatus | None) -> str | None:
        """The run an app stop interrupted (a dead worker, or cancelled by SIGTERM) if its checkpoint is there."""
        if job is None or job.run_id is None or job.status not in (*ACTIVE, "cancelled"):
            return None
        state = self.settings.runs_dir / job.run_id / "checkpoint" / "state.json"
        return job.run_id if state.is_file() else None

    def _add(self, run: QueuedRun, front: bool) -> None:
        """Put a run in line (the lock is held), record it as queued, and make sure the queue is served."""
        self._pending.insert(0 if front else len(self._pending), run)
        write_status(self.settings, JobStatus(run.domain, status="queued", pid=os.getpid(), run_id=run.resume))
        self._idle.clear()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="triptych-training-queue", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        """Run the queue's workers one after the other until it is empty."""
        while True:
            with self._lock:
                if not self._pending:
                    self._current, self._thread = None, None
                    self._idle.set()
                    return
                self._current = self._pending.pop(0)
                run = self._current
            try:
                self._run(run)
            except Exception as exc:  # noqa: BLE001 - the queue must go on; the page shows the job's error
                failed = JobStatus(run.domain, status="failed", error=f"{type(exc).__name__}: {exc}")
                write_status(self.settings, failed)

    def _run(self, run: QueuedRun) -> None:
        """Start one worker, wait for it, and record a crash the worker could not report itself."""
        if run.only_if_missing and registry.active_adapter(self.settings, run.domain) is not None:
            done = JobStatus(run.domain, status="done", messages=["an adapter was trained meanwhile"])
            write_status(self.settings, done)
            return
        folder = jobs_dir(self.settings)
        settings_file = folder / f"{run.domain}.settings.json"
        runstore.write_json(settings_file, self.settings.model_dump(mode="json"))
        command = [sys.executable, "-m", "triptych.finetune.worker", "--domain", run.domain]
        command += ["--settings", str(settings_file), *(["--resume", run.resume] if run.resume else [])]
        command += ["--mode", run.mode] if run.mode != "closed-book" else []
        log_path = folder / f"{run.domain}.log"
        with log_path.open("wb") as log:
            command += self._worker_args
            code = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self._worker_env()).wait()
        job = self.status(run.domain)
        if code not in (0, EXIT_BUSY) and (job is None or job.status in ACTIVE):
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:].strip()
            failed = JobStatus(run.domain, status="failed", run_id=job.run_id if job else run.resume)
            failed.error = f"the training worker exited with code {code}; its log ({log_path}) ends: {tail}"
            write_status(self.settings, failed)

    def _worker_env(self) -> dict[str, str]:
        """This process's environment, with this copy of Triptych first on the import path."""
        env = dict(self._env if self._env is not None else os.environ)
        root = str(Path(triptych.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env.setdefault("HF_HUB_OFFLINE", "1")
        return env
