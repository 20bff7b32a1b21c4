"""Upload indexing runs in the background from files saved first: nothing a click does can drop the batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from triptych.index import chroma_client, open_index
from triptych.ingest import save_uploads, saved_batches
from triptych.settings import Settings
from triptych.testing import HashEmbedder
from triptych.ui.ingest_jobs import IngestJobs

FILES = [("leave.md", b"# Leave\n\nStaff get 28 days of leave."), ("travel.txt", b"Trains go first class."),
         ("empty.txt", b""), ("leave.md", b"# Another file with the same name")]  # fmt: skip


class GatedEmbedder(HashEmbedder):
    """Embeds only once the gate is open (a slow model), counting the texts it was given."""

    def __init__(self, model_name: str) -> None:
        super().__init__(model_name=model_name)
        self.gate = threading.Event()

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        assert self.gate.wait(30), "the test never opened the gate"
        return super().embed_documents(texts)


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    return Settings(_env_file=None, data_dir=clean_env / "data", chroma_path=clean_env / "indexes")  # type: ignore[call-arg]


def test_a_saved_batch_is_indexed_in_the_background_and_then_cleared(settings: Settings) -> None:
    batch = save_uploads(settings, "acme", FILES)
    assert [b.names for b in saved_batches(settings)] == [[n for n, _ in FILES]]  # on disk before any indexing
    assert sorted(p.read_bytes() for p in batch.folder.glob("*/*")) == sorted(d for _, d in FILES)
    embedder, busy, finished = GatedEmbedder(settings.embedding_model), [], []

    @contextmanager
    def marking(domain: str) -> Iterator[None]:
        busy.append(domain)
        yield

    jobs = IngestJobs()
    job = jobs.start(settings, batch, busy=marking, on_done=finished.append, client=chroma_client(settings),
                     embedder=embedder)  # fmt: skip
    assert job.running and jobs.running("acme") == [job] and jobs.running("other") == []
    assert jobs.start(settings, batch) is job  # the same batch is never indexed twice at once
    embedder.gate.set()
    assert jobs.wait(job.job_id, timeout=60) is job and not job.running
    assert (job.status, job.done, job.total, busy, finished) == ("done", 4, 4, ["acme"], [job])
    assert job.report is not None
    assert [o.status for o in job.report.outcomes] == ["added", "added", "refused", "refused"]
    assert [r.doc_id for r in open_index(settings, "acme").documents()] == ["leave.md", "travel.txt"]
    assert saved_batches(settings) == [] and not batch.folder.exists()  # indexed: the originals are kept instead


def test_a_batch_whose_indexing_fails_stays_saved_for_another_try(settings: Settings) -> None:
    batch = save_uploads(settings, "acme", FILES[:2])
    too_big = settings.model_copy(update={"chunk_size": 600})  # over what the embedder reads: the batch stops
    embedder = GatedEmbedder(settings.embedding_model)
    embedder.gate.set()
    jobs = IngestJobs()
    failed = jobs.wait(jobs.start(too_big, batch, client=chroma_client(settings), embedder=embedder).job_id, 60)
    assert failed is not None and failed.status == "failed" and "TRIPTYCH_CHUNK_SIZE=600" in (failed.error or "")
    assert [b.folder for b in saved_batches(settings)] == [batch.folder]
    again = jobs.wait(jobs.start(settings, batch, client=chroma_client(settings), embedder=embedder).job_id, 60)
    assert again is not None and again.status == "done" and len(again.report.stored) == 2  # type: ignore[union-attr]
    assert saved_batches(settings) == []
