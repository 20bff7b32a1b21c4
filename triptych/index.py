"""Chroma storage: one index per domain, embedding model and chunking, embedded or on a Chroma server.

An index (a *variant* of the domain) is two collections. `<domain>.<model>` holds the chunks of the
default chunking (TRIPTYCH_CHUNK_SIZE/OVERLAP's built-in defaults); another chunking gets
`<domain>.<model>.c<size>-o<overlap>` (see variant_name), so several variants of one domain sit side
by side and can be compared. The chunk collection (text, offsets, page, section,
cosine vectors). `<name>.docs` is the catalog: one record per document with its full text
and metadata, including a `version` (content hash + chunking). The catalog is the source of truth:
a chunk is only ever returned while its document's catalog record names the chunk's version. So a
document becomes visible all at once, when its catalog record is written after all its chunks;
a failure before that leaves nothing visible, and the stray chunks are removed.

Every write to a domain (chunks, catalog, clean-up) holds the domain's write lock: a file lock under
TRIPTYCH_DATA_DIR/locks when the index is opened from the settings, so that the app and the CLI, or
two CLI runs, never interleave a document's chunks-then-catalog write with another's clean-up.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from filelock import FileLock

from triptych.documents.chunking import Chunk
from triptych.settings import Settings

ROLE_CHUNKS = "chunks"
ROLE_DOCUMENTS = "documents"
CATALOG_SUFFIX = ".docs"
_DOMAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_PAGE = 5000  # records fetched per request when reading a whole collection
log = logging.getLogger(__name__)


class IndexStoreError(RuntimeError):
    """Chroma cannot be used as configured; the message names the fix."""


class IndexNotFoundError(IndexStoreError):
    """No index exists yet for a domain and embedding model."""


class VariantNotBuiltError(IndexNotFoundError):
    """The domain has indexes, but none with the asked-for embedding model and chunking: it must be built."""


DEFAULT_CHUNK_SIZE: int = Settings.model_fields["chunk_size"].default
DEFAULT_CHUNK_OVERLAP: int = Settings.model_fields["chunk_overlap"].default


def chroma_settings() -> ChromaSettings:
    """Client settings: no telemetry (Triptych runs offline)."""
    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def chroma_client(settings: Settings) -> ClientAPI:
    """The process-wide Chroma client: embedded under TRIPTYCH_CHROMA_PATH, or a Chroma server."""
    if settings.chroma_mode == "server":
        return _http_client(settings.chroma_host, settings.chroma_port)
    return _persistent_client(str(Path(settings.chroma_path).resolve()))


@lru_cache(maxsize=8)
def _persistent_client(path: str) -> ClientAPI:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=path, settings=chroma_settings())
    except Exception as exc:
        raise IndexStoreError(
            f"cannot open the Chroma index folder {path} ({type(exc).__name__}: {exc}); set "
            "TRIPTYCH_CHROMA_PATH to a writable folder"
        ) from None


@lru_cache(maxsize=8)
def _http_client(host: str, port: int) -> ClientAPI:
    try:
        client = chromadb.HttpClient(host=host, port=port, settings=chroma_settings())
        client.heartbeat()
    except Exception as exc:
        raise IndexStoreError(
            f"cannot reach the Chroma server at http://{host}:{port} ({type(exc).__name__}); start one "
            f"with `chroma run --path indexes --host {host} --port {port}`, fix TRIPTYCH_CHROMA_HOST/"
            "TRIPTYCH_CHROMA_PORT, or set TRIPTYCH_CHROMA_MODE=embedded"
        ) from None
    return client


def check_domain(domain: str) -> str:
    """A domain name usable in collection names: letters, digits, '_' and '-', 1-63 characters."""
    if not _DOMAIN.match(domain):
        raise ValueError(
            f"invalid domain name {domain!r}: use 1-63 letters, digits, '_' or '-', starting with a letter "
            "or digit (e.g. hr_handbook)"
        )
    return domain


def model_key(model_name: str) -> str:
    """The embedding model's identity: case and the sentence-transformers/ prefix do not matter."""
    key = model_name.strip().lower()
    return key.removeprefix("sentence-transformers/")


def collection_name(domain: str, model_name: str) -> str:
    """The chunk collection of a domain and model, e.g. hr_handbook.all-minilm-l6-v2-5c1e0a."""
    key = model_key(model_name)
    slug = re.sub(r"[^a-z0-9]+", "-", key.rstrip("/").rsplit("/", 1)[-1]).strip("-")[:40] or "model"
    digest = hashlib.sha1(key.encode()).hexdigest()[:6]
    return f"{check_domain(domain)}.{slug}-{digest}"


def variant_name(domain: str, model_name: str, chunk_size: int, chunk_overlap: int) -> str:
    """The chunk collection of one variant: today's `collection_name` for the default chunking, else suffixed.

    e.g. hr_handbook.all-minilm-l6-v2-5c1e0a (160/24) and hr_handbook.all-minilm-l6-v2-5c1e0a.c300-o40.
    """
    base = collection_name(domain, model_name)
    if (chunk_size, chunk_overlap) == (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP):
        return base
    return f"{base}.c{int(chunk_size)}-o{int(chunk_overlap)}"


def build_command(domain: str, chunk_size: int, chunk_overlap: int, model_name: str) -> str:
    """The command that builds a variant beside the domain's other indexes."""
    return (
        f"triptych index build --domain {domain} --chunk-size {chunk_size} --chunk-overlap {chunk_overlap} "
        f"--embedding-model {model_name}"
    )


def version_of(content_hash: str, chunk_size: int, chunk_overlap: int, unit: str = "characters") -> str:
    """What a document's chunks were made from: its bytes and the chunking settings (and their unit)."""
    key = f"{content_hash}:{chunk_size}:{chunk_overlap}" + ("" if unit == "characters" else f":{unit}")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DocumentRecord:
    """What the catalog keeps about one document (its full text is stored beside it)."""

    doc_id: str
    source: str  # file name as uploaded
    title: str
    kind: str
    content_hash: str  # sha256 of the file's bytes
    version: str  # see version_of
    ingested_at: str  # ISO 8601, UTC
    chunks: int
    chars: int
    bytes: int
    chunk_size: int
    chunk_overlap: int
    pages: int | None = None
    original: str = ""  # the kept original's file name (see triptych.originals); "" when none is kept

    def metadata(self) -> dict[str, str | int]:
        """Chroma metadata (no None values)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> DocumentRecord:
        """Rebuild a record from catalog metadata."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in meta.items() if k in fields})


def chunk_from_chroma(chunk_id: str, text: str | None, meta: dict[str, Any]) -> Chunk:
    """A chunk from one Chroma record (the reverse of `DomainIndex._chunk_metadata`)."""
    return Chunk(
        chunk_id=chunk_id,
        doc_id=str(meta["doc_id"]),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        text=text or "",
        start=int(meta["start"]),
        end=int(meta["end"]),
        version=str(meta.get("version", "")),
        index=int(meta.get("chunk_index", 0)),
        page=int(meta["page"]) if "page" in meta else None,
        section=str(meta["section"]) if "section" in meta else None,
        flags=str(meta.get("flags", "")),
    )


@dataclass(frozen=True)
class IndexInfo:
    """One index, as `triptych index list` shows it."""

    domain: str
    embedding_model: str
    collection: str
    documents: int
    chunks: int
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP


LOCK_TIMEOUT_S = 600.0  # another writer holds a domain for one document's write at a time: seconds, not minutes
_local_locks: dict[str, threading.RLock] = {}
_local_locks_guard = threading.Lock()


def domain_lock(lock_dir: Path | None, domain: str) -> AbstractContextManager[object]:
    """The write lock of a domain: across processes with a lock folder, else within this process.

    Re-entrant in the thread that holds it; released by the operating system if the holder dies.
    """
    if lock_dir is None:
        with _local_locks_guard:
            return _local_locks.setdefault(domain, threading.RLock())
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_dir / f"{check_domain(domain)}.lock", timeout=LOCK_TIMEOUT_S, is_singleton=True)


@dataclass(frozen=True)
class IndexAudit:
    """How the stored chunks compare with the catalog."""

    versions: dict[str, str]  # every catalog document's current version
    intact: dict[str, str]  # the documents whose stored chunks are exactly those the catalog counts
    orphans: int  # chunks of no current version (a crash, or an interrupted replace)

    @property
    def damaged(self) -> list[str]:
        """Documents whose stored chunk count differs from the catalog's: to be indexed again."""
        return sorted(set(self.versions) - set(self.intact))


class DomainIndex:
    """The chunks and catalog of one variant of a domain: one embedding model, one chunk size and overlap.

    Without chunk_size/chunk_overlap it is the default-chunking variant (today's collection name).
    """

    def __init__(
        self,
        client: ClientAPI,
        domain: str,
        embedding_model: str,
        *,
        create: bool = True,
        lock_dir: Path | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
    ) -> None:
        self.client = client
        self.lock_dir = lock_dir
        self.domain = check_domain(domain)
        self.embedding_model = embedding_model
        self.chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        self.chunk_overlap = DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else int(chunk_overlap)
        self.name = variant_name(domain, embedding_model, self.chunk_size, self.chunk_overlap)
        base: dict[str, str | int] = {
            "domain": domain,
            "embedding_model": embedding_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }
        if legacy_index_pending(client, domain, embedding_model):  # made before variants: record its chunking first
            with self.write_lock():
                settle_legacy_index(client, domain, embedding_model)
        if create:
            with self.write_lock():  # two processes creating the same collections at once would collide
                self._create(base)
        else:
            try:
                self.chunks = client.get_collection(self.name, embedding_function=None)
                self.catalog = client.get_collection(self.name + CATALOG_SUFFIX, embedding_function=None)
            except (NotFoundError, ValueError):
                raise self._not_found() from None
        self._check_space()

    def _not_found(self) -> IndexNotFoundError:
        others = [i for i in list_indexes(self.client) if i.domain == self.domain]
        if not others:
            return IndexNotFoundError(
                f"no index for domain {self.domain!r} with embedding model {self.embedding_model}: build it with "
                f"`triptych ingest PATH --domain {self.domain}` (or upload documents in the app)"
            )
        built = "; ".join(f"{i.chunk_size}/{i.chunk_overlap} with {i.embedding_model}" for i in others)
        return VariantNotBuiltError(
            f"domain {self.domain!r} has no index with chunks of {self.chunk_size} tokens, overlap "
            f"{self.chunk_overlap} and embedding model {self.embedding_model} yet (built: {built}): build it on "
            f"the Documents page (Build this index) or with "
            f"`{build_command(self.domain, self.chunk_size, self.chunk_overlap, self.embedding_model)}`"
        )

    def _create(self, base: dict[str, str | int]) -> None:
        self.chunks = self.client.get_or_create_collection(
            self.name,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={**base, "triptych": ROLE_CHUNKS},
            embedding_function=None,
        )
        self.catalog = self.client.get_or_create_collection(
            self.name + CATALOG_SUFFIX,
            metadata={**base, "triptych": ROLE_DOCUMENTS},
            embedding_function=None,
        )

    def _check_space(self) -> None:
        with warnings.catch_warnings():  # chroma warns that embedding_function=None is a legacy config
            warnings.simplefilter("ignore", DeprecationWarning)
            config = self.chunks.configuration or {}
        space = (config.get("hnsw") or config.get("spann") or {}).get("space", "cosine")
        if space != "cosine":
            raise IndexStoreError(
                f"collection {self.name} uses {space} distance, not cosine: delete it with "
                f"`triptych index delete {self.domain}` and ingest again"
            )

    # --- reading --------------------------------------------------------------------------------------

    def count_chunks(self) -> int:
        """Chunks stored (including any not yet cleaned up after a failure)."""
        return self.chunks.count()

    def count_documents(self) -> int:
        """Documents in the catalog."""
        return self.catalog.count()

    def documents(self) -> list[DocumentRecord]:
        """Every document of the index, by doc_id."""
        records = [DocumentRecord.from_metadata(m) for _, _, m in _read_all(self.catalog, documents=False)]
        return sorted(records, key=lambda r: r.doc_id)

    def document(self, doc_id: str) -> DocumentRecord | None:
        """One document's record, or None."""
        got = self.catalog.get(ids=[doc_id], include=["metadatas"])
        metas = got["metadatas"] or []
        return DocumentRecord.from_metadata(dict(metas[0])) if metas else None

    def document_text(self, doc_id: str) -> str:
        """The full text a document's chunk offsets point into."""
        got = self.catalog.get(ids=[doc_id], include=["documents"])
        docs = got["documents"] or []
        if not docs:
            raise KeyError(f"no document {doc_id!r} in domain {self.domain!r}")
        return docs[0] or ""

    def versions(self, doc_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Current version of each document (all documents when doc_ids is None)."""
        if doc_ids is None:
            return {i: str(m["version"]) for i, _, m in _read_all(self.catalog, documents=False)}
        ids = sorted(set(doc_ids))
        if not ids:
            return {}
        got = self.catalog.get(ids=ids, include=["metadatas"])
        return {i: str(m["version"]) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def signature(self) -> str:
        """Changes whenever a document is added, replaced or removed (keys caches such as BM25)."""
        items = sorted(self.versions().items())
        return hashlib.sha1(repr(items).encode()).hexdigest()

    def query(self, embedding: np.ndarray, n: int) -> list[tuple[Chunk, float]]:
        """The n nearest current chunks with their cosine similarity (1 - cosine distance)."""
        count = self.chunks.count()
        if count == 0 or n < 1:
            return []
        result = self.chunks.query(
            query_embeddings=[np.asarray(embedding, dtype=np.float32)],
            n_results=min(n, count),
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        hits = [
            (chunk_from_chroma(i, d, dict(m)), 1.0 - float(dist))
            for i, d, m, dist in zip(ids, docs, metas, dists, strict=True)
        ]
        return self._current(hits)

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        """Current chunks by id, with their stored (normalised) vectors."""
        if not chunk_ids:
            return []
        got = self.chunks.get(ids=list(chunk_ids), include=["documents", "metadatas", "embeddings"])
        embeddings = got["embeddings"] if got["embeddings"] is not None else []
        hits = [
            (chunk_from_chroma(i, d, dict(m)), np.asarray(e, dtype=np.float32))
            for i, d, m, e in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], embeddings, strict=True)
        ]
        return self._current(hits)

    def all_chunks(self) -> list[Chunk]:
        """Every current chunk (for lexical search), in document and chunk order."""
        versions = self.versions()
        chunks = [
            chunk_from_chroma(i, d, m)
            for i, d, m in _read_all(self.chunks, documents=True)
            if versions.get(str(m["doc_id"])) == m.get("version")
        ]
        return sorted(chunks, key=lambda c: (c.doc_id, c.start))

    def _current(self, hits: list[tuple[Chunk, Any]]) -> list[tuple[Chunk, Any]]:
        versions = self.versions(c.doc_id for c, _ in hits)
        return [(c, x) for c, x in hits if versions.get(c.doc_id) == c.version]

    def audit(self) -> IndexAudit:
        """Compare the stored chunks with the catalog: which documents are intact, how many chunks are orphans."""
        records = {r.doc_id: r for r in self.documents()}
        counts: dict[tuple[str, str], int] = {}
        for _, _, meta in _read_all(self.chunks, documents=False):
            key = (str(meta["doc_id"]), str(meta.get("version", "")))
            counts[key] = counts.get(key, 0) + 1
        versions = {d: r.version for d, r in records.items()}
        intact = {d: r.version for d, r in records.items() if counts.get((d, r.version), 0) == r.chunks}
        orphans = sum(n for (d, v), n in counts.items() if versions.get(d) != v)
        return IndexAudit(versions, intact, orphans)

    # --- writing --------------------------------------------------------------------------------------

    def write_lock(self) -> AbstractContextManager[object]:
        """The domain's write lock (see domain_lock); every method below takes it."""
        return domain_lock(self.lock_dir, self.domain)

    def store_document(
        self, record: DocumentRecord, text: str, chunks: Sequence[Chunk], embeddings: np.ndarray
    ) -> None:
        """Add or replace a document: new chunks first, then its catalog record, then old chunks go.

        If anything fails, the new chunks are removed again and the previous version (if any) stays
        as it was; the error is re-raised.
        """
        if len(chunks) != len(embeddings):
            raise ValueError(f"{len(chunks)} chunks but {len(embeddings)} embeddings")
        with self.write_lock():
            self._store_document(record, text, chunks, embeddings)

    def _store_document(
        self, record: DocumentRecord, text: str, chunks: Sequence[Chunk], embeddings: np.ndarray
    ) -> None:
        ids = [f"{record.doc_id}#{record.version}#{c.index}" for c in chunks]
        metadatas = [self._chunk_metadata(record, c) for c in chunks]
        rewrite = self.versions([record.doc_id]).get(record.doc_id) == record.version
        try:
            batch = max(1, self.client.get_max_batch_size())
            for i in range(0, len(ids), batch):
                self.chunks.upsert(
                    ids=ids[i : i + batch],
                    embeddings=np.asarray(embeddings[i : i + batch], dtype=np.float32),
                    documents=[c.text for c in chunks[i : i + batch]],
                    metadatas=metadatas[i : i + batch],  # type: ignore[arg-type]
                )
            self.catalog.upsert(
                ids=[record.doc_id],
                embeddings=[[0.0]],  # the catalog is looked up by id, never by similarity
                documents=[text],
                metadatas=[record.metadata()],
            )
        except BaseException:
            if not rewrite:  # rewriting the current version in place must not delete it
                self._delete_chunks({"$and": [{"doc_id": record.doc_id}, {"version": record.version}]})
            raise
        self._delete_chunks({"$and": [{"doc_id": record.doc_id}, {"version": {"$ne": record.version}}]})
        extra = [{"doc_id": record.doc_id}, {"version": record.version}, {"chunk_index": {"$gte": len(chunks)}}]
        self._delete_chunks({"$and": extra})  # a repaired document had more chunks of this version than it has

    def _chunk_metadata(self, record: DocumentRecord, chunk: Chunk) -> dict[str, str | int]:
        meta: dict[str, str | int] = {
            "doc_id": record.doc_id,
            "source": record.source,
            "title": record.title,
            "kind": record.kind,
            "content_hash": record.content_hash,
            "version": record.version,
            "ingested_at": record.ingested_at,
            "chunk_index": chunk.index,
            "start": chunk.start,
            "end": chunk.end,
            "domain": self.domain,
        }
        if chunk.page is not None:
            meta["page"] = chunk.page
        if chunk.section:
            meta["section"] = chunk.section
        if chunk.flags:
            meta["flags"] = chunk.flags
        return meta

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document and its chunks; False when it was not there."""
        with self.write_lock():
            existed = self.document(doc_id) is not None
            self.catalog.delete(ids=[doc_id])
            self._delete_chunks({"doc_id": doc_id})
        return existed

    def remove_orphans(self) -> int:
        """Delete chunks no catalog record points to (left by a crash mid-write); returns how many.

        Under the write lock: another writer's chunks, written but not yet in the catalog, are not stray.
        """
        with self.write_lock():
            versions = self.versions()
            stale = [
                i
                for i, _, m in _read_all(self.chunks, documents=False)
                if versions.get(str(m["doc_id"])) != m.get("version")
            ]
            for i in range(0, len(stale), _PAGE):
                self.chunks.delete(ids=stale[i : i + _PAGE])
        return len(stale)

    def _delete_chunks(self, where: dict[str, Any]) -> None:
        self.chunks.delete(where=where)  # type: ignore[arg-type]

    def drop(self) -> None:
        """Delete both collections of this index."""
        with self.write_lock():
            for name in (self.name, self.name + CATALOG_SUFFIX):
                try:
                    self.client.delete_collection(name)
                except (NotFoundError, ValueError):
                    pass


def _read_all(collection: Collection, *, documents: bool) -> list[tuple[str, str | None, dict[str, Any]]]:
    include: list[Any] = ["metadatas", "documents"] if documents else ["metadatas"]
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    offset = 0
    while True:
        got = collection.get(include=include, limit=_PAGE, offset=offset)
        ids = got["ids"]
        docs = got["documents"] if documents and got["documents"] is not None else [None] * len(ids)
        out.extend((i, d, dict(m)) for i, d, m in zip(ids, docs, got["metadatas"] or [], strict=True))
        if len(ids) < _PAGE:
            return out
        offset += _PAGE


def open_index(
    settings: Settings, domain: str, *, create: bool = False, client: ClientAPI | None = None
) -> DomainIndex:
    """The variant of a domain the settings use: their embedding model, chunk size and overlap.

    IndexNotFoundError if the domain has no index; VariantNotBuiltError (naming the build command) if it
    has others. Its writes hold the domain's lock file under TRIPTYCH_DATA_DIR/locks (see domain_lock).
    """
    return DomainIndex(
        client or chroma_client(settings),
        domain,
        settings.embedding_model,
        create=create,
        lock_dir=locks_dir(settings),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )


def locks_dir(settings: Settings) -> Path:
    """Where the domains' write locks live (TRIPTYCH_DATA_DIR/locks), shared by the app and the CLI."""
    return settings.data_dir / "locks"


def list_indexes(client: ClientAPI) -> list[IndexInfo]:
    """Every Triptych index the client holds, by domain then model."""
    infos = []
    collections = {c.name: c for c in client.list_collections()}
    for name, col in collections.items():
        meta = col.metadata or {}
        if meta.get("triptych") != ROLE_CHUNKS:
            continue
        catalog = collections.get(name + CATALOG_SUFFIX)
        size, overlap = _chunking(meta, catalog)
        infos.append(
            IndexInfo(
                domain=str(meta.get("domain", name)),
                embedding_model=str(meta.get("embedding_model", "?")),
                collection=name,
                documents=catalog.count() if catalog is not None else 0,
                chunks=col.count(),
                chunk_size=size,
                chunk_overlap=overlap,
            )
        )
    return sorted(infos, key=lambda i: (i.domain, i.embedding_model, i.chunk_size, i.chunk_overlap))


def _chunking(meta: Any, catalog: Collection | None) -> tuple[int, int]:
    """A chunk collection's chunk size and overlap: recorded in its metadata, or (made before variants) read
    from its documents' records: the most common pair, the defaults for an empty index."""
    if "chunk_size" in meta and "chunk_overlap" in meta:
        return int(meta["chunk_size"]), int(meta["chunk_overlap"])
    pairs: dict[tuple[int, int], int] = {}
    for _, _, m in _read_all(catalog, documents=False) if catalog is not None else []:
        if "chunk_size" in m and "chunk_overlap" in m:
            pair = (int(m["chunk_size"]), int(m["chunk_overlap"]))
            pairs[pair] = pairs.get(pair, 0) + 1
    return max(pairs, key=lambda p: (pairs[p], p)) if pairs else (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP)


def legacy_index_pending(client: ClientAPI, domain: str, embedding_model: str) -> bool:
    """Whether the default-named index of a domain and model has no chunking recorded, or another chunking's name."""
    try:
        meta = client.get_collection(collection_name(domain, embedding_model), embedding_function=None).metadata or {}
    except (NotFoundError, ValueError):
        return False
    if meta.get("triptych") != ROLE_CHUNKS:
        return False
    if "chunk_size" not in meta or "chunk_overlap" not in meta:
        return True
    return (int(meta["chunk_size"]), int(meta["chunk_overlap"])) != (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP)


def settle_legacy_index(client: ClientAPI, domain: str, embedding_model: str) -> str | None:
    """Give an index made before variants existed its chunking: recorded, and its variant's name if not default.

    Each step can be repeated after a crash: the chunking is recorded on the chunk collection first,
    then the catalog moves, then the chunks. Returns the collection's name afterwards (None when there
    is no such index). Called under the domain's write lock.
    """
    base = collection_name(domain, embedding_model)
    try:
        chunks = client.get_collection(base, embedding_function=None)
    except (NotFoundError, ValueError):
        return None
    meta = dict(chunks.metadata or {})
    if meta.get("triptych") != ROLE_CHUNKS:
        return None
    catalog: Collection | None
    try:
        catalog = client.get_collection(base + CATALOG_SUFFIX, embedding_function=None)
    except (NotFoundError, ValueError):
        catalog = None
    if "chunk_size" not in meta or "chunk_overlap" not in meta:
        meta["chunk_size"], meta["chunk_overlap"] = _chunking(meta, catalog)
        chunks.modify(metadata=meta)
    target = variant_name(domain, embedding_model, int(meta["chunk_size"]), int(meta["chunk_overlap"]))
    if target == base:
        return base
    names = {c.name for c in client.list_collections()}
    if target in names:
        log.warning("cannot move %s to %s: that index exists already; delete one of them", base, target)
        return base
    if catalog is not None and target + CATALOG_SUFFIX not in names:
        catalog_meta = {
            **(catalog.metadata or {}),
            "chunk_size": meta["chunk_size"],
            "chunk_overlap": meta["chunk_overlap"],
        }
        catalog.modify(name=target + CATALOG_SUFFIX, metadata=catalog_meta)
    chunks.modify(name=target)
    log.info("index %s holds chunks of %s/%s: renamed to %s", base, meta["chunk_size"], meta["chunk_overlap"], target)
    return target


def original_in_use(client: ClientAPI, domain: str, name: str) -> bool:
    """Whether any index of the domain (any embedding model) has a document whose kept original is `name`."""
    for col in client.list_collections():
        meta = col.metadata or {}
        if meta.get("triptych") == ROLE_DOCUMENTS and meta.get("domain") == domain:
            catalog = client.get_collection(col.name, embedding_function=None)
            if catalog.get(where={"original": name}, include=[], limit=1)["ids"]:
                return True
    return False


def delete_domain(client: ClientAPI, domain: str, embedding_model: str | None = None) -> list[str]:
    """Delete a domain's indexes (for every embedding model, or one); returns the collections removed."""
    check_domain(domain)
    removed = []
    for col in client.list_collections():
        meta = col.metadata or {}
        if meta.get("triptych") not in (ROLE_CHUNKS, ROLE_DOCUMENTS) or meta.get("domain") != domain:
            continue
        if embedding_model is not None and model_key(str(meta.get("embedding_model", ""))) != model_key(
            embedding_model
        ):
            continue
        client.delete_collection(col.name)
        removed.append(col.name)
    return sorted(removed)
