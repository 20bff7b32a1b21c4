"""Batches: good files go in and are searchable, bad ones are listed with reasons and leave nothing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pypdf
import pytest

from triptych.documents.chunking import ChunkingConfig, ChunkSizeError
from triptych.documents.validation import MIB, Limits
from triptych.index import DomainIndex
from triptych.ingest import (
    IngestProgress,
    SourceFile,
    collect_files,
    demo_domains,
    ensure_demo_indexes,
    ingest_paths,
    ingest_sources,
    ingest_uploads,
    known_domains,
)
from triptych.retrieval import Retriever
from triptych.settings import Settings
from triptych.testing import (
    HashEmbedder,
    ephemeral_client,
    make_docx,
    make_pdf,
    temporary_index,
    unique_domain,
)

LIMITS = Limits(max_bytes=1 * MIB, max_pdf_pages=20)


def _encrypted(pdf: bytes) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt("pw")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zip_named_txt() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def test_mixed_batch_good_files_searchable_bad_files_listed() -> None:
    pdf = make_pdf(["Expense claims are paid within 14 days.", "Receipts are needed above 25 EUR."])
    good = {
        "expenses.pdf": pdf,
        "travel.docx": make_docx([("Heading 1", "Travel"), ("Normal", "Rail trips over four hours go first class.")]),
        "benefits.html": b"<html><head><title>Benefits</title></head><body><p>Bike leasing via JobRad.</p>",
        "leave.md": b"# Leave\n\nEmployees receive 28 vacation days.",
        "conduct.txt": b"Code of conduct\n\nGifts above 50 EUR must be declared.",
    }
    bad = {
        "empty.txt": b"",
        "fake.docx": pdf,
        "archive.txt": _zip_named_txt(),
        "cut.pdf": pdf[: len(pdf) // 2],
        "locked.pdf": _encrypted(pdf),
        "junk.txt": bytes(range(256)) * 8,
        "huge.md": b"x" * (LIMITS.max_bytes + 1),
    }
    files = list(good.items())
    for i, item in enumerate(bad.items()):  # interleave, so bad files sit between good ones
        files.insert(2 * i + 1, item)
    events: list[IngestProgress] = []
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        report = ingest_sources(
            index,
            embedder,
            [SourceFile.from_bytes(n, d) for n, d in files],
            limits=LIMITS,
            chunking=ChunkingConfig(400, 50),
            progress=events.append,
        )
        assert sorted(o.doc_id for o in report.stored) == sorted(good)
        refused = {o.doc_id: o.reason for o in report.refused}
        assert set(refused) == set(bad)
        assert "empty" in refused["empty.txt"]
        assert "not a Word .docx" in refused["fake.docx"]
        assert "ZIP archive" in refused["archive.txt"]
        assert "truncated" in refused["cut.pdf"]
        assert "password-protected" in refused["locked.pdf"]
        assert "binary data" in refused["junk.txt"]
        assert "TRIPTYCH_MAX_UPLOAD_MB" in refused["huge.md"]
        for doc_id in bad:  # nothing of a refused file is stored
            assert index.chunks.get(where={"doc_id": doc_id})["ids"] == []
            assert index.document(doc_id) is None
        assert [e.done for e in events] == list(range(1, len(files) + 1))
        assert all(e.total == len(files) for e in events)
        retriever = Retriever(index, embedder, top_k=1, min_score=0.0, hybrid=False)
        for query, doc_id in [
            ("expense claims paid days", "expenses.pdf"),
            ("rail trips first class", "travel.docx"),
            ("bike leasing JobRad", "benefits.html"),
            ("vacation days employees", "leave.md"),
            ("gifts declared", "conduct.txt"),
        ]:
            assert retriever.search(query)[0].doc_id == doc_id, query
        pdf_chunk = retriever.search("receipts needed above 25 EUR")[0]
        assert (pdf_chunk.doc_id, pdf_chunk.page) == ("expenses.pdf", 1)  # one chunk, starting on page 1


def test_same_id_twice_in_a_batch() -> None:
    embedder = HashEmbedder()
    with temporary_index(embedder=embedder) as index:
        report = ingest_sources(
            index,
            embedder,
            [SourceFile.from_bytes("a.md", b"one"), SourceFile.from_bytes("a.md", b"two")],
            limits=LIMITS,
            chunking=ChunkingConfig(400, 50),
        )
        assert [o.status for o in report.outcomes] == ["added", "refused"]
        assert "same id" in report.outcomes[1].reason


def test_embedding_failure_refuses_only_that_file() -> None:
    class FlakyEmbedder(HashEmbedder):
        def embed_documents(self, texts):  # type: ignore[no-untyped-def]
            if any("explode" in t for t in texts):
                raise RuntimeError("model crashed")
            return super().embed_documents(texts)

    embedder = FlakyEmbedder()
    with temporary_index(embedder=embedder) as index:
        report = ingest_sources(
            index,
            embedder,
            [SourceFile.from_bytes("a.md", b"explode"), SourceFile.from_bytes("b.md", b"fine text")],
            limits=LIMITS,
            chunking=ChunkingConfig(400, 50),
        )
        assert [o.status for o in report.outcomes] == ["refused", "added"]
        assert "model crashed" in report.outcomes[0].reason
        assert index.count_chunks() == 1


def test_collect_files_recurses_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "policies" / ".git").mkdir(parents=True)
    (tmp_path / "policies" / "leave.md").write_text("# Leave")
    (tmp_path / "policies" / ".git" / "HEAD").write_text("ref")
    (tmp_path / "policies" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "root.txt").write_text("hi")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep").mkdir()
    (tmp_path / "sub" / "deep" / "x.html").write_text("<p>x</p>")
    files = collect_files([tmp_path])
    assert [f.doc_id for f in files] == ["policies/leave.md", "root.txt", "sub/deep/x.html"]
    assert [f.doc_id for f in collect_files([tmp_path / "root.txt"])] == ["root.txt"]


def test_ingest_paths_and_uploads_with_settings(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", chunk_size=300, chunk_overlap=30)  # type: ignore[call-arg]
    client = ephemeral_client()
    embedder = HashEmbedder(model_name=settings.embedding_model)  # stands in for the real model
    domain = unique_domain()
    (tmp_path / "leave.md").write_text("# Leave\n\n28 days of leave.")
    try:
        report = ingest_paths(settings, domain, [tmp_path], client=client, embedder=embedder)
        assert [o.status for o in report.stored] == ["added"]
        uploads = ingest_uploads(
            settings, domain, [("notes.txt", b"Notes about leave.")], client=client, embedder=embedder
        )
        assert [o.doc_id for o in uploads.stored] == ["notes.txt"]
        index = DomainIndex(client, domain, settings.embedding_model, create=False, chunk_size=300, chunk_overlap=30)
        assert index.document("leave.md").chunk_size == 300
        assert report.summary().startswith(f"{domain}: 1 stored, 0 unchanged, 0 refused")
    finally:
        DomainIndex(client, domain, settings.embedding_model, chunk_size=300, chunk_overlap=30).drop()


def test_a_chunk_size_over_what_the_embedder_reads_stops_the_ingest_and_stores_nothing(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", chunk_size=600, chunk_overlap=30)  # type: ignore[call-arg]
    client = ephemeral_client()
    embedder = HashEmbedder(model_name=settings.embedding_model)  # reads at most 512 tokens
    domain = unique_domain()
    (tmp_path / "leave.md").write_text("# Leave\n\n28 days of leave.")
    try:
        with pytest.raises(ChunkSizeError, match="TRIPTYCH_CHUNK_SIZE=600 tokens"):
            ingest_paths(settings, domain, [tmp_path], client=client, embedder=embedder)
        index = DomainIndex(client, domain, settings.embedding_model, create=False, chunk_size=600, chunk_overlap=30)
        assert index.versions() == {}
    finally:
        DomainIndex(client, domain, settings.embedding_model, chunk_size=600, chunk_overlap=30).drop()


def test_known_domains_are_the_demo_corpora_and_the_indexes_of_this_embedding_model(tmp_path: Path) -> None:
    _corpora(tmp_path)
    settings = Settings(_env_file=None, corpora_dir=tmp_path, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    client = ephemeral_client()
    ours, other_model = unique_domain(), unique_domain()
    DomainIndex(client, ours, settings.embedding_model.upper())  # the same model, spelled differently
    DomainIndex(client, other_model, "another-embedding-model")
    try:
        found = known_domains(settings, client)
        assert {"hr", "support", ours} <= set(found) and other_model not in found
        assert found == sorted(found)
    finally:
        DomainIndex(client, ours, settings.embedding_model).drop()
        DomainIndex(client, other_model, "another-embedding-model").drop()


def _corpora(root: Path) -> None:
    (root / "hr" / "docs").mkdir(parents=True)
    (root / "hr" / "docs" / "leave.md").write_text("# Leave\n\nStaff get 28 days.")
    (root / "hr" / "docs" / "travel.txt").write_text("Travel\n\nTrains are booked in second class.")
    (root / "hr" / "qa.jsonl").write_text("")
    (root / "support" / "docs").mkdir(parents=True)
    (root / "support" / "docs" / "reset.html").write_text("<h1>Password reset</h1><p>Use the portal.</p>")
    (root / "drafts").mkdir()  # no docs/: not a domain
    (root / "empty" / "docs").mkdir(parents=True)  # docs/ without files: nothing to index


def test_ensure_demo_indexes_builds_once(tmp_path: Path) -> None:
    _corpora(tmp_path / "corpora")
    prefix = unique_domain("demo")  # unique domain names: in-process clients share collections
    (tmp_path / "corpora" / "hr").rename(tmp_path / "corpora" / f"{prefix}-hr")
    (tmp_path / "corpora" / "support").rename(tmp_path / "corpora" / f"{prefix}-support")
    settings = Settings(_env_file=None, corpora_dir=tmp_path / "corpora", data_dir=tmp_path / "data")  # type: ignore[call-arg]
    client = ephemeral_client()
    embedder = HashEmbedder(model_name=settings.embedding_model)
    assert sorted(demo_domains(settings.corpora_dir)) == [f"{prefix}-hr", f"{prefix}-support"]
    events: list[IngestProgress] = []
    try:
        first = ensure_demo_indexes(settings, events.append, client=client, embedder=embedder)
        assert {d: len(r.stored) for d, r in first.items()} == {f"{prefix}-hr": 2, f"{prefix}-support": 1}
        assert [(e.done, e.total) for e in events] == [(1, 3), (2, 3), (3, 3)]
        calls = len(embedder.calls)

        second = ensure_demo_indexes(settings, client=client, embedder=embedder)
        assert all(len(r.unchanged) == len(r.outcomes) for r in second.values())
        assert len(embedder.calls) == calls  # nothing parsed or embedded again

        (tmp_path / "corpora" / f"{prefix}-hr" / "docs" / "leave.md").write_text("# Leave\n\nStaff get 30 days.")
        third = ensure_demo_indexes(settings, client=client, embedder=embedder)
        assert [o.doc_id for o in third[f"{prefix}-hr"].stored] == ["leave.md"]
        hr = DomainIndex(client, f"{prefix}-hr", settings.embedding_model, create=False)
        assert "30 days" in hr.document_text("leave.md")
    finally:
        for domain in (f"{prefix}-hr", f"{prefix}-support"):
            DomainIndex(client, domain, settings.embedding_model).drop()


def test_ensure_demo_indexes_without_corpora(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpora_dir=tmp_path / "absent")  # type: ignore[call-arg]
    assert ensure_demo_indexes(settings, client=ephemeral_client(), embedder=HashEmbedder()) == {}
