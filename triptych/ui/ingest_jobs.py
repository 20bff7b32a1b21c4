"""Upload indexing started from the Documents page: background threads of the app process, polled by the page.

Streamlit stops a page's script at the next widget interaction, so indexing inside the script would
silently drop the rest of a batch when the user clicks anything. The page saves the uploads to disk
(`triptych.ingest.save_uploads`) and hands the saved batch to this registry; a thread indexes it,
one batch at a time, and the page shows its progress on every rerun.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from chromadb.api import ClientAPI

from triptych.embeddings import Embedder
from triptych.ingest import IngestProgress, IngestReport, SavedBatch, ingest_saved
from triptych.settings import Settings


@dataclass
class IngestJob:
    """One saved upload being indexed (or just finished)."""

    job_id: str  # the batch folder's name
    domain: str
    total: int
    done: int = 0
    current: str = ""
    status: str = "queued"  # queued | indexing | done | failed
    report: IngestReport | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the job still has work to do (queued or indexing)."""
        return self.thread is not None and self.thread.is_alive()


class IngestJobs:
    """The app's upload indexing jobs, by id; they run one at a time, in the order they were started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._jobs: dict[str, IngestJob] = {}

    def get(self, job_id: str | None) -> IngestJob | None:
        """A job started in this process, or None."""
        with self._lock:
            return self._jobs.get(job_id or "")

    def running(self, domain: str | None = None) -> list[IngestJob]:
        """Jobs not finished yet (of one domain, or all)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if j.running and (domain is None or j.domain == domain)]

    def start(
        self,
        settings: Settings,
        batch: SavedBatch,
        *,
        busy: Callable[[str], AbstractContextManager[object]] | None = None,
        on_done: Callable[[IngestJob], None] | None = None,
        client: ClientAPI | None = None,
        embedder: Embedder | None = None,
    ) -> IngestJob:
        """Index a saved batch in a background thread; starting one already known returns that job.

        `busy(domain)` marks the domain busy while the job indexes (the Compare page waits for it);
        `on_done(job)` runs when it has finished, failed or not.
        """
        with self._lock:
            known = self._jobs.get(batch.folder.name)
            if known is not None and (known.running or known.status == "done"):
                return known
            job = self._jobs[batch.folder.name] = IngestJob(batch.folder.name, batch.domain, len(batch.names))

        def progress(p: IngestProgress) -> None:
            job.done, job.current = p.done, p.source

        def work() -> None:
            with self._one_at_a_time:
                job.status = "indexing"
                try:
                    with busy(job.domain) if busy else nullcontext():
                        job.report = ingest_saved(settings, batch.folder, progress=progress, client=client,
                                                  embedder=embedder)  # fmt: skip
                    job.status = "done"
                except Exception as exc:  # noqa: BLE001 - shown on the page; the saved files stay for a retry
                    job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
                finally:
                    if on_done is not None:
                        on_done(job)

        job.thread = threading.Thread(target=work, name=f"triptych-ingest-{job.job_id}", daemon=True)
        job.thread.start()
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> IngestJob | None:
        """Block until a job has finished; returns it."""
        job = self.get(job_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job


_registry = IngestJobs()


def ingest_jobs() -> IngestJobs:
    """The process-wide registry (module state outlives each page run, as st.cache_resource would)."""
    return _registry
