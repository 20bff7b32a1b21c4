"""Put files into a domain index: validate, parse, chunk, embed, store; one file at a time.

Each file either goes in completely or not at all, with a reason; a bad file never stops the rest
of the batch. A file whose bytes (and the chunking settings) are unchanged since it was indexed is
skipped after hashing, so re-ingesting a folder, or building the demo indexes at start-up, only
does the work that changed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from chromadb.api import ClientAPI

from triptych.documents.chunking import ChunkingConfig, ChunkSizeError, chunk_document
from triptych.documents.injection import flags_of
from triptych.documents.loaders import load_document
from triptych.documents.validation import DocumentRejected, Limits, check_size
from triptych.embeddings import Embedder, LazyEmbedder
from triptych.index import DocumentRecord, DomainIndex, check_domain, open_index, version_of
from triptych.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["added", "replaced", "unchanged", "refused"]


@dataclass(frozen=True)
class SourceFile:
    """One file to ingest: the id it is stored under, its file name, and its bytes or path."""

    doc_id: str
    name: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, path: Path, doc_id: str | None = None) -> SourceFile:
        """A file on disk, stored under its file name unless doc_id says otherwise."""
        return cls(doc_id=doc_id or path.name, name=path.name, path=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes, doc_id: str | None = None) -> SourceFile:
        """An upload held in memory."""
        return cls(doc_id=doc_id or name, name=name, data=data)

    def size(self) -> int:
        """Size in bytes, without reading a file from disk."""
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def read(self) -> bytes:
        """The file's bytes."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file."""

    doc_id: str
    source: str
    status: Status
    chunks: int = 0
    bytes: int = 0
    reason: str | None = None  # why it was refused


@dataclass(frozen=True)
class IngestProgress:
    """Reported after each file: `done` of `total` files handled so far."""

    domain: str
    done: int
    total: int
    source: str
    status: Status


ProgressCallback = Callable[[IngestProgress], None]


@dataclass
class IngestReport:
    """The outcome of one batch."""

    domain: str
    embedding_model: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, *statuses: Status) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def stored(self) -> list[FileOutcome]:
        """Files added or replaced."""
        return self._with("added", "replaced")

    @property
    def unchanged(self) -> list[FileOutcome]:
        """Files already indexed as they are."""
        return self._with("unchanged")

    @property
    def refused(self) -> list[FileOutcome]:
        """Files refused, each with its reason."""
        return self._with("refused")

    @property
    def chunks(self) -> int:
        """Chunks written in this batch."""
        return sum(o.chunks for o in self.stored)

    @property
    def bytes(self) -> int:
        """Bytes of the files written in this batch."""
        return sum(o.bytes for o in self.stored)

    def summary(self) -> str:
        """One line: files, chunks, refusals, time."""
        return (
            f"{self.domain}: {len(self.stored)} stored, {len(self.unchanged)} unchanged, "
            f"{len(self.refused)} refused; {self.chunks} chunks in {self.seconds:.1f} s"
        )


def collect_files(paths: Iterable[Path]) -> list[SourceFile]:
    """Files to ingest: each file as given, and every file under each folder (recursively).

    A file inside a folder is stored under its path relative to that folder (e.g. `policies/leave.md`);
    hidden files and folders are skipped.
    """
    sources: list[SourceFile] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                rel = file.relative_to(path)
                if file.is_file() and not any(part.startswith(".") for part in rel.parts):
                    sources.append(SourceFile.from_path(file, rel.as_posix()))
        else:
            sources.append(SourceFile.from_path(path))
    return sources


def content_hash(data: bytes) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def ingest_sources(
    index: DomainIndex,
    embedder: Embedder,
    sources: Sequence[SourceFile],
    *,
    limits: Limits,
    chunking: ChunkingConfig,
    progress: ProgressCallback | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> IngestReport:
    """Ingest files into an index, one by one; refused files are reported, never half-stored."""
    started = time.perf_counter()
    report = IngestReport(index.domain, index.embedding_model)
    known = index.versions()
    seen: dict[str, str] = {}
    total = progress_total if progress_total is not None else len(sources)
    for n, source in enumerate(sources, start=1):
        if source.doc_id in seen:
            outcome = FileOutcome(
                source.doc_id,
                source.name,
                "refused",
                reason=f"another file in this batch ({seen[source.doc_id]}) has the same id; ingest it alone",
            )
        else:
            seen[source.doc_id] = str(source.path or source.name)
            outcome = _ingest_one(index, embedder, source, known, limits, chunking)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(IngestProgress(index.domain, progress_offset + n, total, source.doc_id, outcome.status))
    if any(o.status != "unchanged" for o in report.outcomes):
        index.remove_orphans()  # chunks left by an interrupted earlier run (never visible, but stored)
    report.seconds = time.perf_counter() - started
    return report


def _ingest_one(
    index: DomainIndex,
    embedder: Embedder,
    source: SourceFile,
    known: dict[str, str],
    limits: Limits,
    chunking: ChunkingConfig,
) -> FileOutcome:
    try:
        check_size(source.size(), limits)
        data = source.read()
        digest = content_hash(data)
        version = version_of(digest, chunking.size, chunking.overlap, chunking.unit)
        if known.get(source.doc_id) == version:
            return FileOutcome(source.doc_id, source.name, "unchanged", bytes=len(data))
        document = load_document(source.name, data, limits)
        chunks = [replace(c, flags=flags_of(c.text)) for c in chunk_document(document, chunking)]  # injection flags
        if not chunks:
            raise DocumentRejected("no text to index")
        embeddings = embedder.embed_documents([c.text for c in chunks])
        record = DocumentRecord(
            doc_id=source.doc_id,
            source=source.name,
            title=document.title,
            kind=document.kind.value,
            content_hash=digest,
            version=version,
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            chunks=len(chunks),
            chars=len(document.text),
            bytes=len(data),
            chunk_size=chunking.size,
            chunk_overlap=chunking.overlap,
            pages=document.pages,
        )
        index.store_document(record, document.text, chunks, embeddings)
    except ChunkSizeError:
        raise  # a setting, not this file: stop the batch with the message that names it
    except DocumentRejected as exc:
        return FileOutcome(source.doc_id, source.name, "refused", reason=str(exc))
    except OSError as exc:
        return FileOutcome(source.doc_id, source.name, "refused", reason=f"cannot read the file: {exc}")
    except Exception as exc:  # embedding or storage failed: this file only, the batch goes on
        log.exception("indexing %s failed", source.name)
        return FileOutcome(
            source.doc_id,
            source.name,
            "refused",
            reason=f"could not be indexed ({type(exc).__name__}: {exc})",
        )
    status: Status = "replaced" if source.doc_id in known else "added"
    known[source.doc_id] = version
    notes = "; ".join(document.warnings) or None  # stored, with a warning for the user (encoding, hidden text)
    return FileOutcome(source.doc_id, source.name, status, chunks=len(chunks), bytes=len(data), reason=notes)


def chunking_from(settings: Settings, embedder: Embedder) -> ChunkingConfig:
    """TRIPTYCH_CHUNK_SIZE and TRIPTYCH_CHUNK_OVERLAP, in tokens of the embedding model."""
    return ChunkingConfig(settings.chunk_size, settings.chunk_overlap, tokenizer=embedder)


def ingest_paths(
    settings: Settings,
    domain: str,
    paths: Sequence[Path],
    *,
    progress: ProgressCallback | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Ingest files and folders (recursively) into a domain's index, creating it if needed."""
    return _ingest_into(settings, domain, collect_files(paths), progress, client, embedder)


def ingest_uploads(
    settings: Settings,
    domain: str,
    uploads: Sequence[tuple[str, bytes]],
    *,
    progress: ProgressCallback | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Ingest uploaded files (name, bytes) into a domain's index, creating it if needed."""
    sources = [SourceFile.from_bytes(name, data) for name, data in uploads]
    return _ingest_into(settings, domain, sources, progress, client, embedder)


def _ingest_into(
    settings: Settings,
    domain: str,
    sources: list[SourceFile],
    progress: ProgressCallback | None,
    client: ClientAPI | None,
    embedder: Embedder | None,
    *,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> IngestReport:
    index = open_index(settings, check_domain(domain), create=True, client=client)
    embedder = embedder or LazyEmbedder(settings.embedding_model, settings.embedding_batch_size)
    return ingest_sources(
        index,
        embedder,
        sources,
        limits=Limits.from_settings(settings),
        chunking=chunking_from(settings, embedder),
        progress=progress,
        progress_offset=progress_offset,
        progress_total=progress_total,
    )


def demo_domains(corpora_dir: Path) -> dict[str, Path]:
    """The demo corpora: each folder of corpora_dir with a non-empty docs/ folder, by domain name."""
    if not corpora_dir.is_dir():
        return {}
    found = {}
    for folder in sorted(p for p in corpora_dir.iterdir() if p.is_dir()):
        docs = folder / "docs"
        if docs.is_dir() and any(f.is_file() for f in docs.rglob("*")):
            try:
                found[check_domain(folder.name)] = docs
            except ValueError as exc:
                log.warning("skipping demo corpus %s: %s", folder, exc)
    return found


def known_domains(settings: Settings, client: ClientAPI | None = None) -> list[str]:
    """Demo domains and every domain with an index for the configured embedding model, sorted."""
    from triptych.index import chroma_client, list_indexes, model_key

    names = set(demo_domains(settings.corpora_dir))
    try:
        indexes = list_indexes(client or chroma_client(settings))
    except Exception:  # noqa: BLE001 - an unreachable Chroma server shows up where it is used
        return sorted(names)
    wanted = model_key(settings.embedding_model)
    return sorted(names | {i.domain for i in indexes if model_key(i.embedding_model) == wanted})


def ensure_demo_indexes(
    settings: Settings,
    progress_callback: ProgressCallback | None = None,
    *,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> dict[str, IngestReport]:
    """Index the demo corpora (TRIPTYCH_CORPORA_DIR/<domain>/docs/) where they are missing or changed.

    Each file is hashed and compared with the index; only new or changed files are parsed and
    embedded, and the embedding model is not even loaded when everything is up to date. Documents
    in the index that are not in the corpus (for example uploads) are left alone.
    """
    domains = {d: collect_files([docs]) for d, docs in demo_domains(settings.corpora_dir).items()}
    total = sum(len(s) for s in domains.values())
    embedder = embedder or LazyEmbedder(settings.embedding_model, settings.embedding_batch_size)
    reports: dict[str, IngestReport] = {}
    done = 0
    for domain, sources in domains.items():
        reports[domain] = _ingest_into(
            settings, domain, sources, progress_callback, client, embedder, progress_offset=done, progress_total=total
        )
        done += len(sources)
        if reports[domain].refused:
            log.warning("demo corpus %s: %s", domain, reports[domain].summary())
    return reports
