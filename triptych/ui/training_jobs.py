"""Fine-tuning runs started from the app: one background thread per domain, polled by the page.

Training takes minutes to hours, longer than a page's script run should last, so it runs in a
daemon thread of the app process; the Fine-tune page shows its progress and can cancel it (the
run then stays resumable, as with `triptych finetune --resume`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from triptych.settings import Settings


@dataclass
class TrainingJob:
    """One run in progress (or just finished) for a domain."""

    domain: str
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    status: str = "starting"
    messages: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        return self.thread is not None and self.thread.is_alive()


class TrainingJobs:
    """The app's training runs, by domain (at most one running per domain)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}

    def get(self, domain: str) -> TrainingJob | None:
        """The domain's latest job, if one was started in this process."""
        with self._lock:
            return self._jobs.get(domain)

    def start(self, settings: Settings, domain: str) -> TrainingJob:
        """Start training `domain` with the TRIPTYCH_FINETUNE_* settings (ValueError if one runs)."""
        from triptych.finetune.runs import run_local
        from triptych.finetune.train import Progress, TrainConfig

        with self._lock:
            current = self._jobs.get(domain)
            if current is not None and current.running:
                raise ValueError(f"a training run for {domain} is already in progress")
            job = TrainingJob(domain)
            self._jobs[domain] = job

        def on_progress(p: Progress) -> None:
            job.step, job.total_steps, job.loss, job.eta_s = p.step, p.total_steps, p.loss, p.eta_s
            job.status = "training"

        def on_status(message: str) -> None:
            job.messages.append(str(message))

        def work() -> None:
            try:
                job.result = run_local(
                    settings, domain, TrainConfig.from_settings(settings),
                    on_progress=on_progress, on_status=on_status, cancel=job.cancel,
                )  # fmt: skip
                job.status = str(job.result.get("status", "done"))
            except Exception as exc:  # noqa: BLE001 - shown on the page
                job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"

        job.thread = threading.Thread(target=work, name=f"triptych-finetune-{domain}", daemon=True)
        job.thread.start()
        return job
