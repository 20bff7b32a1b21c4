"""Upload indexing started from the Documents page: background threads of the app process, polled by the page.

Streamlit stops a page's script at the next widget interaction, so indexing inside the script would
silently drop the rest of a batch when the user clicks anything. The page saves the uploads to disk
(`triptych.ingest.save_uploads`) and hands the saved batch to this registry; a thread indexes it,
one batch at a time, and the page shows its progress on every rerun. Building another index variant
of a domain (`triptych.variants.build_variant`) runs the same way, in the same one-at-a-time line.
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
from triptych.variants import Variant, build_variant


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
    variant: Variant | None = None  # set for a build of an index variant

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

    def building(self, variant: Variant) -> IngestJob | None:
        """The running build of a variant, or None."""
        return next((j for j in self.running(variant.domain) if j.variant is not None and j.variant.same_as(variant)),
                    None)  # fmt: skip

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

        def index(progress: Callable[[IngestProgress], None]) -> IngestReport:
            return ingest_saved(settings, batch.folder, progress=progress, client=client, embedder=embedder)

        return self._run(job, index, busy, on_done)

    def start_build(
        self,
        settings: Settings,
        variant: Variant,
        *,
        on_done: Callable[[IngestJob], None] | None = None,
        client: ClientAPI | None = None,
        embedder: Embedder | None = None,
    ) -> IngestJob:
        """Build (or update) an index variant in a background thread; its build already running is returned.

        The domain is not marked busy: its other variants keep answering while this one is filled.
        """
        with self._lock:
            known = next((j for j in self._jobs.values() if j.running and j.variant is not None
                          and j.variant.same_as(variant)), None)  # fmt: skip
            if known is not None:
                return known
            job_id = f"build-{variant.collection}-{time.monotonic_ns()}"
            job = self._jobs[job_id] = IngestJob(job_id, variant.domain, 0, variant=variant)

        def build(progress: Callable[[IngestProgress], None]) -> IngestReport:
            return build_variant(settings, variant, progress=progress, client=client, embedder=embedder)

        return self._run(job, build, None, on_done)

    def _run(
        self,
        job: IngestJob,
        index: Callable[[Callable[[IngestProgress], None]], IngestReport],
        busy: Callable[[str], AbstractContextManager[object]] | None,
        on_done: Callable[[IngestJob], None] | None,
    ) -> IngestJob:
        def progress(p: IngestProgress) -> None:
            job.done, job.total, job.current = p.done, p.total, p.source

        def work() -> None:
            with self._one_at_a_time:
                job.status = "indexing"
                try:
                    with busy(job.domain) if busy else nullcontext():
                        job.report = index(progress)
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
