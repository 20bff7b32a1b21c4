"""Uploaded originals are kept by content hash, go with their document, and feed fine-tuning."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from triptych.finetune.runs import training_set_for
from triptych.index import chroma_client, open_index
from triptych.ingest import SourceFile, delete_document, ingest_paths, ingest_uploads
from triptych.settings import Settings
from triptych.testing import HashEmbedder, make_docx

LEAVE = b"# Annual leave\n\nEmployees receive 28 days of paid annual leave per calendar year.\n"
TRAVEL = b"# Travel\n\nRail journeys over four hours may be booked in first class by every employee.\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    return Settings(_env_file=None, data_dir=clean_env / "data", chroma_path=clean_env / "indexes",  # type: ignore[call-arg]
                    corpora_dir=clean_env / "corpora")  # fmt: skip


def upload(settings: Settings, domain: str, files: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    embedder = HashEmbedder(model_name=settings.embedding_model)
    return ingest_uploads(settings, domain, files, client=chroma_client(settings), embedder=embedder)


def kept(settings: Settings, domain: str) -> list[str]:
    folder = settings.data_dir / "originals" / domain
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_uploads_are_kept_by_content_hash_once_and_go_with_their_document(settings: Settings) -> None:
    report = upload(settings, "acme", [("Leave Policy.MD", LEAVE), ("travel.md", TRAVEL)])
    assert [o.status for o in report.outcomes] == ["added", "added"]
    assert kept(settings, "acme") == sorted([f"{sha(LEAVE)}.md", f"{sha(TRAVEL)}.md"])
    index = open_index(settings, "acme")
    record = index.document("Leave Policy.MD")
    assert (record.source, record.original) == ("Leave Policy.MD", f"{sha(LEAVE)}.md")  # display name kept
    assert (settings.data_dir / "originals" / "acme" / record.original).read_bytes() == LEAVE

    upload(settings, "acme", [("leave-copy.md", LEAVE)])  # the same bytes under another name: stored once
    assert len(kept(settings, "acme")) == 2
    assert delete_document(settings, "acme", "Leave Policy.MD")
    assert f"{sha(LEAVE)}.md" in kept(settings, "acme")  # the copy still needs it
    assert delete_document(settings, "acme", "leave-copy.md")
    assert kept(settings, "acme") == [f"{sha(TRAVEL)}.md"]
    assert not delete_document(settings, "acme", "leave-copy.md")


def test_a_replaced_document_lets_go_of_its_old_original(settings: Settings) -> None:
    upload(settings, "acme", [("leave.md", LEAVE)])
    newer = LEAVE.replace(b"28", b"30")
    assert [o.status for o in upload(settings, "acme", [("leave.md", newer)]).outcomes] == ["replaced"]
    assert kept(settings, "acme") == [f"{sha(newer)}.md"]


def test_a_refused_upload_keeps_nothing(settings: Settings) -> None:
    report = upload(settings, "acme", [("empty.txt", b""), ("fake.docx", b"%PDF-1.4 not a word file")])
    assert [o.status for o in report.outcomes] == ["refused", "refused"]
    assert kept(settings, "acme") == []


def test_a_domain_built_from_uploads_gets_a_training_set_from_them(settings: Settings) -> None:
    docx = make_docx([("Heading 1", "Expenses"), ("Normal", "Expense claims are reimbursed within fourteen days.")])
    upload(settings, "uploaded", [("leave.md", LEAVE), ("expenses.docx", docx)])
    assert not (settings.corpora_dir / "uploaded").exists()  # no corpus folder, no gold QA: only the uploads

    ts = training_set_for(settings, "uploaded")

    assert ts.generator == {"kind": "extractive"}
    answers = {e.answer: e.source_id for e in ts.examples}
    assert answers["Employees receive 28 days of paid annual leave per calendar year."] == "doc:leave.md#0"
    assert answers["Expense claims are reimbursed within fourteen days."] == "doc:expenses.docx#0"
    assert all(e.question.endswith("?") for e in ts.examples)


def test_corpus_documents_and_uploads_train_together_counting_the_same_bytes_once(
    settings: Settings, tmp_path: Path
) -> None:
    docs = settings.corpora_dir / "mixed" / "docs"
    docs.mkdir(parents=True)
    (docs / "leave.md").write_bytes(LEAVE)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "travel.md").write_bytes(TRAVEL)
    embedder = HashEmbedder(model_name=settings.embedding_model)
    client = chroma_client(settings)
    ingest_paths(settings, "mixed", [tmp_path / "extra"], client=client, embedder=embedder)  # the CLI keeps it too
    upload(settings, "mixed", [("leave (copy).md", LEAVE)])

    sources = [e.source_id for e in training_set_for(settings, "mixed").examples]

    assert sources == ["doc:leave.md#0", "doc:travel.md#0"]


def test_deleting_an_uploaded_document_removes_it_from_the_training_set(settings: Settings) -> None:
    upload(settings, "acme", [("leave.md", LEAVE), ("travel.md", TRAVEL)])
    delete_document(settings, "acme", "travel.md")
    assert [e.source_id for e in training_set_for(settings, "acme").examples] == ["doc:leave.md#0"]


def test_a_document_indexed_before_originals_were_kept_gets_one_when_uploaded_again(settings: Settings) -> None:
    from triptych.ingest import _ingest_into

    embedder = HashEmbedder(model_name=settings.embedding_model)
    sources = [SourceFile.from_bytes("leave.md", LEAVE)]
    _ingest_into(settings, "older", sources, None, chroma_client(settings), embedder)  # as an older version did
    assert open_index(settings, "older").document("leave.md").original == "" and kept(settings, "older") == []

    assert [o.status for o in upload(settings, "older", [("leave.md", LEAVE)]).outcomes] == ["unchanged"]

    assert open_index(settings, "older").document("leave.md").original == f"{sha(LEAVE)}.md"
    assert [e.source_id for e in training_set_for(settings, "older").examples] == ["doc:leave.md#0"]
