"""Chroma index per domain and model: idempotent re-ingest, replace, delete, persistence, no half-writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import chromadb
import pytest

from tests.fakes import assert_consistent
from triptych.documents.chunking import ChunkingConfig
from triptych.documents.validation import Limits
from triptych.index import (
    DomainIndex,
    IndexNotFoundError,
    check_domain,
    chroma_client,
    chroma_settings,
    collection_name,
    delete_domain,
    list_indexes,
)
from triptych.ingest import SourceFile, ingest_sources
from triptych.retrieval import Retriever
from triptych.settings import Settings
from triptych.testing import HashEmbedder, add_texts, ephemeral_client, temporary_index, unique_domain

LIMITS = Limits(max_bytes=5 * 1024 * 1024, max_pdf_pages=50)
LEAVE_V1 = "# Leave\n\nEmployees get 28 days of annual leave per year.\n\n## Carry-over\n\nUp to 5 days carry over."
LEAVE_V2 = "# Leave\n\nEmployees get 30 days of annual leave per year.\n\nNo days carry over any more."
TRAVEL = "Travel policy. Trains over four hours may be booked in first class. Flights need approval."


def doc_chunk_ids(index: DomainIndex, doc_id: str) -> list[str]:
    return index.chunks.get(where={"doc_id": doc_id})["ids"]


def ingest(index: DomainIndex, docs: dict[str, str], embedder: HashEmbedder, size: int = 800, overlap: int = 120):
    sources = [SourceFile.from_bytes(name, text.encode()) for name, text in docs.items()]
    return ingest_sources(index, embedder, sources, limits=LIMITS, chunking=ChunkingConfig(size, overlap))


def test_reingest_is_idempotent() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        first = ingest(index, {"leave.md": LEAVE_V1, "travel.txt": TRAVEL}, embedder)
        assert [o.status for o in first.outcomes] == ["added", "added"]
        ids_before = sorted(index.chunks.get()["ids"])
        calls = len(embedder.calls)
        again = ingest(index, {"leave.md": LEAVE_V1, "travel.txt": TRAVEL}, embedder)
        assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]
        assert again.chunks == 0
        assert len(embedder.calls) == calls  # nothing was parsed or embedded again
        assert sorted(index.chunks.get()["ids"]) == ids_before


def test_changed_file_replaces_its_chunks() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1, "travel.txt": TRAVEL}, embedder)
        old_ids = doc_chunk_ids(index, "leave.md")
        report = ingest(index, {"leave.md": LEAVE_V2}, embedder)
        assert [o.status for o in report.outcomes] == ["replaced"]
        new_ids = doc_chunk_ids(index, "leave.md")
        assert new_ids and not set(old_ids) & set(new_ids)
        assert index.document("leave.md").chunks == len(new_ids)
        assert "30 days" in index.document_text("leave.md")
        retriever = Retriever(index, embedder, top_k=5, min_score=-1.0, hybrid=False)
        texts = " ".join(c.text for c in retriever.search("annual leave days carry over"))
        assert "30 days" in texts and "28 days" not in texts
        assert doc_chunk_ids(index, "travel.txt")  # other documents untouched


def test_new_chunking_settings_rechunk_unchanged_bytes() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1}, embedder, size=800, overlap=120)
        report = ingest(index, {"leave.md": LEAVE_V1}, embedder, size=60, overlap=10)
        assert report.outcomes[0].status == "replaced"
        record = index.document("leave.md")
        assert (record.chunk_size, record.chunk_overlap) == (60, 10)
        assert len(doc_chunk_ids(index, "leave.md")) == record.chunks > 1


def test_delete_document_removes_its_chunks() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1, "travel.txt": TRAVEL}, embedder)
        assert index.delete_document("leave.md") is True
        assert doc_chunk_ids(index, "leave.md") == []
        assert index.document("leave.md") is None
        assert [r.doc_id for r in index.documents()] == ["travel.txt"]
        results = Retriever(index, embedder, top_k=5, min_score=-1.0, hybrid=True).search("annual leave")
        assert {c.doc_id for c in results} == {"travel.txt"}
        assert index.delete_document("leave.md") is False
        with pytest.raises(KeyError, match="no document 'leave.md'"):
            index.document_text("leave.md")


def test_chunk_offsets_point_into_the_stored_document_text() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1 * 20}, embedder, size=200, overlap=40)
        retriever = Retriever(index, embedder, top_k=3, min_score=-1.0, hybrid=False)
        text = retriever.document_text("leave.md")
        for chunk in retriever.search("carry over days"):
            assert text[chunk.start : chunk.end] == chunk.text
            assert chunk.section in ("Leave", "Carry-over")
            assert chunk.title == "Leave" and chunk.source == "leave.md"


class FailingUpserts:
    """Wraps a Chroma collection; its upsert fails (as a full disk or lost server would)."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def upsert(self, **kwargs: Any) -> None:
        raise OSError("disk full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


def test_failed_write_leaves_nothing_and_keeps_the_old_version() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1}, embedder)
        v1_ids = sorted(doc_chunk_ids(index, "leave.md"))
        catalog = index.catalog
        index.catalog = FailingUpserts(catalog)  # chunks get written, then the catalog write fails
        try:
            report = ingest(index, {"leave.md": LEAVE_V2, "travel.txt": TRAVEL}, embedder)
        finally:
            index.catalog = catalog
        assert [o.status for o in report.outcomes] == ["refused", "refused"]
        assert "disk full" in report.outcomes[0].reason
        assert sorted(doc_chunk_ids(index, "leave.md")) == v1_ids  # v2 chunks removed again, v1 intact
        assert doc_chunk_ids(index, "travel.txt") == []
        assert "28 days" in index.document_text("leave.md")


def test_stray_chunks_are_invisible_and_cleaned_up() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"travel.txt": TRAVEL}, embedder)
        # what a crash between writing chunks and the catalog record leaves behind
        vector = embedder.embed_documents(["annual leave days"])
        meta = {
            "doc_id": "ghost.md",
            "version": "v0",
            "start": 0,
            "end": 17,
            "source": "ghost.md",
            "title": "g",
        }
        index.chunks.add(ids=["ghost.md#v0#0"], embeddings=vector, documents=["annual leave days"], metadatas=[meta])
        for hybrid in (False, True):
            results = Retriever(index, embedder, top_k=5, min_score=-1.0, hybrid=hybrid).search("annual leave days")
            assert "ghost.md" not in {c.doc_id for c in results}
        assert index.remove_orphans() == 1
        assert doc_chunk_ids(index, "ghost.md") == []


def test_collections_per_domain_and_model() -> None:
    client = ephemeral_client()
    domain = unique_domain()
    small, large = HashEmbedder(64), HashEmbedder(128)
    a = DomainIndex(client, domain, small.model_name)
    b = DomainIndex(client, domain, large.model_name)
    try:
        assert a.name != b.name
        add_texts(a, {"leave.md": LEAVE_V1}, embedder=small)
        add_texts(b, {"travel.txt": TRAVEL}, embedder=large)
        infos = [i for i in list_indexes(client) if i.domain == domain]
        assert {(i.embedding_model, i.documents) for i in infos} == {("hash-64", 1), ("hash-128", 1)}
        with pytest.raises(ValueError, match="built with hash-64"):
            Retriever(a, large, top_k=3, min_score=0.0, hybrid=False)
        assert len(delete_domain(client, domain, "hash-64")) == 2  # chunks and catalog of one model
        assert [i.embedding_model for i in list_indexes(client) if i.domain == domain] == ["hash-128"]
    finally:
        delete_domain(client, domain)
    assert not [i for i in list_indexes(client) if i.domain == domain]


def test_collection_names() -> None:
    name = collection_name("hr_handbook", "all-MiniLM-L6-v2")
    assert name.startswith("hr_handbook.all-minilm-l6-v2-")
    assert name == collection_name("hr_handbook", "sentence-transformers/all-MiniLM-L6-v2")
    assert collection_name("hr", "/models/a/e5-small") != collection_name("hr", "/models/b/e5-small")
    for bad in ("", "has space", "dot.ted", "-leading", "x" * 64):
        with pytest.raises(ValueError, match="invalid domain name"):
            check_domain(bad)


def test_missing_index_names_the_command() -> None:
    with pytest.raises(IndexNotFoundError, match="triptych ingest PATH --domain nowhere"):
        DomainIndex(ephemeral_client(), "nowhere", "hash-256", create=False)


def test_index_survives_a_restart(tmp_path: Path) -> None:
    """Written by this process, read by a fresh one: what a restart of the app sees."""
    settings = Settings(_env_file=None, chroma_path=tmp_path / "indexes")  # type: ignore[call-arg]
    embedder = HashEmbedder()
    index = DomainIndex(chroma_client(settings), "persist", embedder.model_name)
    add_texts(index, {"leave.md": LEAVE_V1, "travel.txt": TRAVEL}, embedder=embedder)
    script = textwrap.dedent(
        f"""
        import json
        from triptych.index import DomainIndex, chroma_client
        from triptych.retrieval import Retriever
        from triptych.settings import Settings
        from triptych.testing import HashEmbedder
        settings = Settings(_env_file=None, chroma_path={str(tmp_path / "indexes")!r})
        index = DomainIndex(chroma_client(settings), "persist", "hash-256", create=False)
        retriever = Retriever(index, HashEmbedder(), top_k=1, min_score=0.0, hybrid=False)
        hits = retriever.search("first class trains")
        print(json.dumps({{"docs": [r.doc_id for r in index.documents()], "top": hits[0].doc_id}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "docs": ["leave.md", "travel.txt"],
        "top": "travel.txt",
    }
    # and a second client object on the same folder in this process sees it too
    client = chromadb.PersistentClient(path=str(tmp_path / "indexes"), settings=chroma_settings())
    again = DomainIndex(client, "persist", "hash-256", create=False)
    assert again.count_documents() == 2


def test_a_document_that_lost_chunks_is_indexed_again_not_reported_unchanged() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"leave.md": LEAVE_V1 * 6, "travel.txt": TRAVEL}, embedder, size=120, overlap=20)
        ids = sorted(doc_chunk_ids(index, "leave.md"))
        assert len(ids) > 2
        index.chunks.delete(ids=ids[1:3])  # what another writer's clean-up did to chunks not yet in the catalog
        report = ingest(index, {"leave.md": LEAVE_V1 * 6, "travel.txt": TRAVEL}, embedder, size=120, overlap=20)
        assert [o.status for o in report.outcomes] == ["replaced", "unchanged"]
        assert sorted(doc_chunk_ids(index, "leave.md")) == ids
        assert_consistent(index)


def test_leftovers_of_an_interrupted_write_go_on_the_next_ingest_even_when_nothing_changed() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        ingest(index, {"travel.txt": TRAVEL}, embedder)
        # a crash after the catalog named the new version, before the old version's chunks were deleted
        old = {"doc_id": "travel.txt", "version": "old", "start": 0, "end": 6, "source": "travel.txt", "title": "t"}
        index.chunks.add(ids=["travel.txt#old#0"], embeddings=embedder.embed_documents(["Travel"]),
                         documents=["Travel"], metadatas=[old])  # fmt: skip
        assert index.count_chunks() == index.document("travel.txt").chunks + 1
        report = ingest(index, {"travel.txt": TRAVEL}, embedder)
        assert [o.status for o in report.outcomes] == ["unchanged"]
        assert_consistent(index)
