"""The same index operations against a real Chroma server (`chroma run`), started and stopped here."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from triptych.index import DomainIndex, IndexStoreError, chroma_client, delete_domain, list_indexes
from triptych.ingest import ingest_paths
from triptych.retrieval import retriever_for
from triptych.settings import Settings
from triptych.testing import HashEmbedder, make_pdf, unique_domain

pytestmark = pytest.mark.integration

CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chroma_server(path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`chroma run` on a folder, ready when its heartbeat answers; stopped on exit."""
    log = (path.parent / f"chroma-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def server_settings(tmp_path: Path) -> Iterator[Settings]:
    if not CHROMA.exists():
        pytest.skip(f"{CHROMA} not found: chromadb's server command is not installed")
    port = free_port()
    with chroma_server(tmp_path / "chroma-data", port):
        yield Settings(_env_file=None, chroma_mode="server", chroma_host="127.0.0.1", chroma_port=port)  # type: ignore[call-arg]


def write_docs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leave.md").write_text("# Leave\n\nEmployees get 28 days of annual leave.\n")
    (folder / "travel.txt").write_text("Travel\n\nTrain journeys over four hours go first class.\n")
    (folder / "expenses.pdf").write_bytes(make_pdf(["Receipts are required above 25 EUR."]))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 cut off")


def test_ingest_search_replace_delete_on_a_server(server_settings: Settings, tmp_path: Path) -> None:
    settings = server_settings
    client = chroma_client(settings)
    embedder = HashEmbedder(model_name=settings.embedding_model)
    domain = unique_domain("server")
    write_docs(tmp_path / "docs")
    try:
        report = ingest_paths(settings, domain, [tmp_path / "docs"], client=client, embedder=embedder)
        assert sorted(o.doc_id for o in report.stored) == ["expenses.pdf", "leave.md", "travel.txt"]
        assert [o.doc_id for o in report.refused] == ["broken.pdf"]

        retriever = retriever_for(settings, domain, client=client, embedder=embedder)
        top = retriever.search("train journeys first class")[0]
        assert top.doc_id == "travel.txt"
        assert retriever.document_text("travel.txt")[top.start : top.end] == top.text

        again = ingest_paths(settings, domain, [tmp_path / "docs"], client=client, embedder=embedder)
        assert len(again.unchanged) == 3 and not again.stored  # idempotent

        (tmp_path / "docs" / "leave.md").write_text("# Leave\n\nEmployees get 30 days of annual leave.\n")
        changed = ingest_paths(settings, domain, [tmp_path / "docs"], client=client, embedder=embedder)
        assert [(o.doc_id, o.status) for o in changed.stored] == [("leave.md", "replaced")]
        index = DomainIndex(client, domain, settings.embedding_model, create=False)
        leave_chunks = index.chunks.get(where={"doc_id": "leave.md"})["documents"]
        assert leave_chunks and all("30 days" in t for t in leave_chunks)

        assert index.delete_document("travel.txt")
        assert index.chunks.get(where={"doc_id": "travel.txt"})["ids"] == []
        hybrid = retriever_for(settings.model_copy(update={"hybrid": True}), domain, client=client, embedder=embedder)
        assert "travel.txt" not in {c.doc_id for c in hybrid.search("train journeys first class", k=5)}

        info = next(i for i in list_indexes(client) if i.domain == domain)
        assert (info.documents, info.embedding_model) == (2, settings.embedding_model)
    finally:
        delete_domain(client, domain)
    assert not [i for i in list_indexes(client) if i.domain == domain]


def test_server_index_survives_a_server_restart(tmp_path: Path) -> None:
    if not CHROMA.exists():
        pytest.skip(f"{CHROMA} not found: chromadb's server command is not installed")
    port = free_port()
    data = tmp_path / "chroma-data"
    settings = Settings(_env_file=None, chroma_mode="server", chroma_host="127.0.0.1", chroma_port=port)  # type: ignore[call-arg]
    embedder = HashEmbedder(model_name=settings.embedding_model)
    write_docs(tmp_path / "docs")
    with chroma_server(data, port):
        ingest_paths(settings, "restart", [tmp_path / "docs"], client=chroma_client(settings), embedder=embedder)
    with chroma_server(data, port):
        client = chroma_client(settings)
        try:
            retriever = retriever_for(settings, "restart", client=client, embedder=embedder)
            assert retriever.search("annual leave days")[0].doc_id == "leave.md"
            assert retriever.index.count_documents() == 3
        finally:
            delete_domain(client, "restart")


def test_unreachable_server_names_the_fix() -> None:
    settings = Settings(_env_file=None, chroma_mode="server", chroma_port=free_port())  # type: ignore[call-arg]
    with pytest.raises(IndexStoreError, match="chroma run --path indexes") as err:
        chroma_client(settings)
    assert "TRIPTYCH_CHROMA_MODE=embedded" in str(err.value)
