"""Put files into a domain index: validate, parse, chunk, embed, store; one file at a time.

Each file either goes in completely or not at all, with a reason; a bad file never stops the rest
of the batch. A file whose bytes (and the chunking settings) are unchanged since it was indexed is
skipped after hashing, so re-ingesting a folder, or building the demo indexes at start-up, only
does the work that changed.

Files are parsed and embedded outside the domain's write lock and stored under it, one at a time,
so two ingests (the app and the CLI) into one domain interleave without losing chunks. Each batch
starts by repairing what an interrupted run left: stray chunks are removed, and a document whose
stored chunks differ from its catalog count is indexed again rather than reported unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Literal

import numpy as np
from chromadb.api import ClientAPI

from triptych.cost_sources import record_index_build
from triptych.documents.chunking import Chunk, ChunkingConfig, ChunkSizeError, chunk_document
from triptych.documents.injection import flags_of
from triptych.documents.loaders import load_document
from triptych.documents.validation import DocumentRejected, Limits, check_size
from triptych.embeddings import Embedder, LazyEmbedder
from triptych.index import DocumentRecord, DomainIndex, check_domain, open_index, original_in_use, version_of
from triptych.originals import discard_original, keep_original, originals_dir
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
    originals: Path | None = None,
) -> IngestReport:
    """Ingest files into an index, one by one; refused files are reported, never half-stored.

    With `originals` (a folder), each stored file's bytes are kept there by content hash and its
    catalog record names the file (see triptych.originals).
    """
    started = time.perf_counter()
    report = IngestReport(index.domain, index.embedding_model)
    with index.write_lock():  # what an interrupted earlier run left: stray chunks go, damaged documents are redone
        audit = index.audit()
        if audit.orphans:
            index.remove_orphans()
    known, intact = dict(audit.versions), dict(audit.intact)
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
            outcome = _ingest_one(index, embedder, source, known, intact, limits, chunking, originals)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(IngestProgress(index.domain, progress_offset + n, total, source.doc_id, outcome.status))
    for doc_id in (d for d in audit.damaged if d not in seen):
        log.warning("%s in %s has lost chunks: ingest it again to repair it", doc_id, index.domain)
    report.seconds = time.perf_counter() - started
    return report


def _ingest_one(
    index: DomainIndex,
    embedder: Embedder,
    source: SourceFile,
    known: dict[str, str],
    intact: dict[str, str],
    limits: Limits,
    chunking: ChunkingConfig,
    originals: Path | None,
) -> FileOutcome:
    """Store one file unless the index holds it intact, as it is (`known`: catalog versions, updated here)."""
    try:
        check_size(source.size(), limits)
        data = source.read()
        digest = content_hash(data)
        version = version_of(digest, chunking.size, chunking.overlap, chunking.unit)
        if intact.get(source.doc_id) == version:
            if originals is not None:  # indexed before originals were kept: keep it now
                _keep_missing_original(index, source.doc_id, data, originals)
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
        _store(index, record, document.text, chunks, embeddings, data, originals)
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
    known[source.doc_id] = intact[source.doc_id] = version
    notes = "; ".join(document.warnings) or None  # stored, with a warning for the user (encoding, hidden text)
    return FileOutcome(source.doc_id, source.name, status, chunks=len(chunks), bytes=len(data), reason=notes)


def _store(
    index: DomainIndex,
    record: DocumentRecord,
    text: str,
    chunks: Sequence[Chunk],
    embeddings: np.ndarray,
    data: bytes,
    originals: Path | None,
) -> None:
    """Keep the original (if asked), store the document, and let go of the original it replaces; under the lock."""
    with index.write_lock():
        if originals is None:
            index.store_document(record, text, chunks, embeddings)
        else:
            _store_with_original(index, record, text, chunks, embeddings, data, originals)


def _store_with_original(
    index: DomainIndex,
    record: DocumentRecord,
    text: str,
    chunks: Sequence[Chunk],
    embeddings: np.ndarray,
    data: bytes,
    originals: Path,
) -> None:
    previous = index.document(record.doc_id)
    name, created = keep_original(originals, record.content_hash, record.source, data)
    try:
        index.store_document(replace(record, original=name), text, chunks, embeddings)
    except BaseException:
        if created:
            discard_original(originals, name)
        raise
    if previous is not None and previous.original not in ("", name):
        _discard_if_unused(index, originals, previous.original)


def _keep_missing_original(index: DomainIndex, doc_id: str, data: bytes, originals: Path) -> None:
    with index.write_lock():
        record = index.document(doc_id)
        if record is not None and not record.original:
            name, _ = keep_original(originals, record.content_hash, record.source, data)
            index.catalog.update(ids=[doc_id], metadatas=[{"original": name}])


def _discard_if_unused(index: DomainIndex, originals: Path, name: str) -> None:
    if not original_in_use(index.client, index.domain, name):
        discard_original(originals, name)


def remove_document(index: DomainIndex, doc_id: str, originals: Path | None = None) -> bool:
    """Delete a document, its chunks and (when no other document has the same bytes) its kept original."""
    with index.write_lock():
        record = index.document(doc_id)
        deleted = index.delete_document(doc_id)
        if record is not None and record.original and originals is not None:
            _discard_if_unused(index, originals, record.original)
    return deleted


def delete_document(settings: Settings, domain: str, doc_id: str, *, client: ClientAPI | None = None) -> bool:
    """Delete a document from every index (variant) of the domain; False when none had it."""
    from triptych.variants import remove_document_everywhere

    return bool(remove_document_everywhere(settings, check_domain(domain), doc_id, client))


def kept_originals(settings: Settings, domain: str, *, client: ClientAPI | None = None) -> list[tuple[str, bytes]]:
    """(display name, bytes) of each document of the domain (any of its indexes) whose original is kept, by doc id.

    Uploads and command-line ingests keep theirs; the demo corpora's documents are their folder.
    """
    from triptych.variants import domain_documents

    if client is None and settings.chroma_mode == "embedded" and not settings.chroma_path.is_dir():
        return []  # nothing was ever indexed here: do not create an empty Chroma folder to find that out
    records = [r for _, r in sorted(domain_documents(settings, check_domain(domain), client).items())]
    folder, files = originals_dir(settings, domain), []
    for record in records:
        if record.original:
            try:
                files.append((record.source, (folder / record.original).read_bytes()))
            except OSError as exc:
                log.warning("original of %s in %s is missing (%s): re-upload it", record.doc_id, domain, exc)
    return files


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
    """Ingest files and folders (recursively) into a domain's index, creating it if needed; originals are kept."""
    sources = collect_files(paths)
    return _ingest_into(settings, domain, sources, progress, client, embedder, keep_originals=True)


def ingest_uploads(
    settings: Settings,
    domain: str,
    uploads: Sequence[tuple[str, bytes]],
    *,
    progress: ProgressCallback | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Ingest uploaded files (name, bytes) into a domain's index, creating it if needed; originals are kept."""
    sources = [SourceFile.from_bytes(name, data) for name, data in uploads]
    return _ingest_into(settings, domain, sources, progress, client, embedder, keep_originals=True)


BATCH_MANIFEST = "batch.json"


def incoming_dir(settings: Settings) -> Path:
    """Where uploads wait, saved, until they are indexed (TRIPTYCH_DATA_DIR/incoming)."""
    return settings.data_dir / "incoming"


@dataclass(frozen=True)
class SavedBatch:
    """An upload saved by save_uploads and not indexed yet."""

    folder: Path
    domain: str
    names: list[str]


def save_uploads(settings: Settings, domain: str, uploads: Sequence[tuple[str, bytes]]) -> SavedBatch:
    """Save uploaded files (name, bytes) to disk before any of them is indexed.

    The manifest is written last: a batch folder with one holds every file of the upload, so an
    indexing run that is interrupted (the app stopped) can be run again from it (`ingest_saved`).
    """
    check_domain(domain)
    batch = incoming_dir(settings) / f"{domain}--{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    files = []
    for n, (name, data) in enumerate(uploads):
        rel = f"{n:04d}/{PurePath(name).name}"  # one folder per file: two uploads may share a name
        (batch / rel).parent.mkdir(parents=True, exist_ok=True)
        (batch / rel).write_bytes(data)
        files.append({"name": name, "path": rel})
    tmp = batch / (BATCH_MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"domain": domain, "files": files}, ensure_ascii=False), encoding="utf-8")
    tmp.replace(batch / BATCH_MANIFEST)
    return SavedBatch(batch, domain, [f["name"] for f in files])


def saved_batches(settings: Settings) -> list[SavedBatch]:
    """Uploads saved but not (completely) indexed, oldest first."""
    batches = []
    root = incoming_dir(settings)
    for manifest in sorted(root.glob(f"*/{BATCH_MANIFEST}")) if root.is_dir() else []:
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
            batches.append(SavedBatch(manifest.parent, str(meta["domain"]), [str(f["name"]) for f in meta["files"]]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable upload batch %s: %s", manifest.parent, exc)
    return batches


def ingest_saved(
    settings: Settings,
    batch: Path,
    *,
    progress: ProgressCallback | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Index a batch saved by save_uploads (each file under its upload name), then remove the batch folder.

    The originals are kept by content hash as with any upload; a refused file is reported, as ever.
    """
    meta = json.loads((batch / BATCH_MANIFEST).read_text(encoding="utf-8"))
    sources = [SourceFile(doc_id=f["name"], name=f["name"], path=batch / f["path"]) for f in meta["files"]]
    report = _ingest_into(settings, meta["domain"], sources, progress, client, embedder, keep_originals=True)
    shutil.rmtree(batch, ignore_errors=True)
    return report


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
    keep_originals: bool = False,
) -> IngestReport:
    """Ingest into the configured index; the demo corpora are their own originals, other files are kept."""
    index = open_index(settings, check_domain(domain), create=True, client=client)
    embedder = embedder or LazyEmbedder(settings.embedding_model, settings.embedding_batch_size)
    cpu_started = time.process_time()
    report = ingest_sources(
        index,
        embedder,
        sources,
        limits=Limits.from_settings(settings),
        chunking=chunking_from(settings, embedder),
        progress=progress,
        progress_offset=progress_offset,
        progress_total=progress_total,
        originals=originals_dir(settings, domain) if keep_originals else None,
    )
    # the measured build time, for the cost card (triptych/cost_sources.py)
    record_index_build(settings, report, cpu_s=time.process_time() - cpu_started)
    return report


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
    from triptych.live_change import with_active_changes  # a fact changed live stays changed across restarts

    domains = {
        d: with_active_changes(settings, d, collect_files([docs]))
        for d, docs in demo_domains(settings.corpora_dir).items()
    }
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
