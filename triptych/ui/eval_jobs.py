"""Evaluations started from the app: one background thread per domain, polled by the Scores page.

An evaluation asks every gold question of a domain through the chosen pipelines, which takes longer
than a page's script run should last, so it runs in a daemon thread of the app process (as training
does, triptych/ui/training_jobs.py). Cancelling stops the questions in flight; the run stays
resumable: starting the same evaluation again continues it, as `triptych eval` does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from triptych.evaluate.runner import Evaluation, EvaluationCancelled, Progress
from triptych.evaluate.store import RunDir
from triptych.qa import QARecord


@dataclass
class EvalJob:
    """One evaluation in progress (or just finished) for a domain."""

    domain: str
    pipelines: list[str]
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    run_id: str | None = None
    last: str = ""  # the last question finished, with each pipeline's status
    status: str = "starting"  # starting | running | complete | partial | cancelled | failed
    summary: dict[str, Any] | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        return self.thread is not None and self.thread.is_alive()


class EvalJobs:
    """The app's evaluations, by domain (at most one running per domain)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, EvalJob] = {}

    def get(self, domain: str) -> EvalJob | None:
        """The domain's latest evaluation, if one was started in this process."""
        with self._lock:
            return self._jobs.get(domain)

    def start(
        self,
        evaluation: Evaluation,
        domain: str,
        records: list[QARecord],
        pipelines: list[str],
        *,
        qa_file: str | None = None,
        split: str | None = None,
    ) -> EvalJob:
        """Evaluate `records` of `domain` with `pipelines` in a background thread (ValueError if one runs)."""
        with self._lock:
            current = self._jobs.get(domain)
            if current is not None and current.running:
                raise ValueError(f"an evaluation of {domain} is already in progress")
            job = EvalJob(domain, list(pipelines), total=len(records))
            self._jobs[domain] = job

        def on_start(run: RunDir, already: int, total: int) -> None:
            job.run_id, job.done, job.total, job.status = run.run_id, already, total, "running"

        def on_progress(p: Progress) -> None:
            job.done, job.total = p.done, p.total
            job.last = f"{p.question_id}: " + ", ".join(f"{k} {v}" for k, v in p.results.items())

        def work() -> None:
            try:
                outcome = evaluation.run(
                    domain, records, pipelines, qa_file=qa_file, split=split,
                    on_start=on_start, on_progress=on_progress, cancel=job.cancel,
                )  # fmt: skip
                job.summary, job.run_id, job.status = outcome.summary, outcome.run.run_id, outcome.summary["status"]
            except EvaluationCancelled:
                job.status = "cancelled"
            except Exception as exc:  # noqa: BLE001 - shown on the page
                job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"

        job.thread = threading.Thread(target=work, name=f"triptych-eval-{domain}", daemon=True)
        job.thread.start()
        return job


@st.cache_resource(show_spinner=False)
def app_eval_jobs() -> EvalJobs:
    """The evaluations of this app process, shared by every session."""
    return EvalJobs()
