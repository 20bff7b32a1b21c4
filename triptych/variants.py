"""Index variants of a domain: the same documents chunked or embedded another way, side by side.

A variant is one (domain, embedding model, chunk size, overlap); the settings pick the one retrieval
uses (`Variant.of`). Building another one reads the domain's documents again from where they are
kept (uploads and command-line ingests: their originals, by content hash; demo domains: their corpus
folder) and indexes them into the new variant's own collections, one document at a time, while the
other variants keep answering. A variant that lacks documents the others hold (an upload made while
it was not in use) is brought up to date the same way: unchanged documents are skipped by hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from chromadb.api import ClientAPI

from triptych.documents.chunking import ChunkingConfig
from triptych.documents.validation import Limits
from triptych.embeddings import Embedder, LazyEmbedder
from triptych.index import (
    DocumentRecord,
    DomainIndex,
    IndexInfo,
    IndexNotFoundError,
    build_command,
    check_domain,
    chroma_client,
    list_indexes,
    locks_dir,
    model_key,
    original_in_use,
    variant_name,
)
from triptych.ingest import (
    FileOutcome,
    IngestProgress,
    IngestReport,
    ProgressCallback,
    SourceFile,
    collect_files,
    ingest_sources,
    remove_document,
)
from triptych.originals import discard_original, originals_dir
from triptych.settings import Settings


@dataclass(frozen=True)
class Variant:
    """One way of indexing a domain: embedding model, chunk size and overlap (tokens of that model)."""

    domain: str
    embedding_model: str
    chunk_size: int
    chunk_overlap: int

    @classmethod
    def of(cls, settings: Settings, domain: str) -> Variant:
        """The variant the settings use for a domain (TRIPTYCH_EMBEDDING_MODEL, _CHUNK_SIZE, _CHUNK_OVERLAP)."""
        return cls(check_domain(domain), settings.embedding_model, settings.chunk_size, settings.chunk_overlap)

    @classmethod
    def from_info(cls, info: IndexInfo) -> Variant:
        """The variant an existing index is."""
        return cls(info.domain, info.embedding_model, info.chunk_size, info.chunk_overlap)

    @property
    def collection(self) -> str:
        """Its chunk collection's name."""
        return variant_name(self.domain, self.embedding_model, self.chunk_size, self.chunk_overlap)

    @property
    def label(self) -> str:
        """e.g. '160/24 tokens · all-MiniLM-L6-v2'."""
        return f"{self.chunk_size}/{self.chunk_overlap} tokens · {self.embedding_model}"

    def same_as(self, other: Variant) -> bool:
        """The same index (model names compared as model_key does)."""
        return self.collection == other.collection

    def build_command(self) -> str:
        """The command line that builds (or updates) it."""
        return build_command(self.domain, self.chunk_size, self.chunk_overlap, self.embedding_model)

    def open(self, client: ClientAPI, settings: Settings, *, create: bool = False) -> DomainIndex:
        """Its index (IndexNotFoundError when it is not built and create is False)."""
        return DomainIndex(
            client,
            self.domain,
            self.embedding_model,
            create=create,
            lock_dir=locks_dir(settings),
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
        )


@dataclass(frozen=True)
class VariantInfo:
    """One built variant of a domain, as the Documents page and `triptych index list` show it."""

    variant: Variant
    documents: int
    chunks: int
    approx_bytes: int  # chunk text plus float32 vectors: what it adds to the store, roughly
    in_use: bool  # the one the current settings use
    out_of_date: int  # documents of the domain it lacks, or holds in another version than the newest


def variants_of(client: ClientAPI, domain: str) -> list[Variant]:
    """Every built variant of a domain."""
    return [Variant.from_info(i) for i in list_indexes(client) if i.domain == domain]


def _opened(settings: Settings, client: ClientAPI, domain: str) -> list[tuple[Variant, DomainIndex]]:
    """The domain's variants, opened; one being created or dropped right now (half its collections) is left out."""
    opened = []
    for variant in variants_of(client, domain):
        try:
            opened.append((variant, variant.open(client, settings)))
        except IndexNotFoundError:
            continue
    return opened


def domain_documents(settings: Settings, domain: str, client: ClientAPI | None = None) -> dict[str, DocumentRecord]:
    """The domain's documents across all its variants: the most recently ingested record of each doc id."""
    client = client or chroma_client(settings)
    newest: dict[str, DocumentRecord] = {}
    for _, index in _opened(settings, client, domain):
        for record in index.documents():
            known = newest.get(record.doc_id)
            if known is None or record.ingested_at > known.ingested_at:
                newest[record.doc_id] = record
    return newest


def list_variants(settings: Settings, domain: str, client: ClientAPI | None = None) -> list[VariantInfo]:
    """The built variants of a domain with their sizes, which one is in use, and how out of date each is."""
    client = client or chroma_client(settings)
    current = Variant.of(settings, domain)
    newest = {d: r.content_hash for d, r in domain_documents(settings, domain, client).items()}
    infos = []
    for variant, index in _opened(settings, client, domain):
        held = {r.doc_id: r.content_hash for r in index.documents()}
        infos.append(
            VariantInfo(
                variant=variant,
                documents=len(held),
                chunks=index.count_chunks(),
                approx_bytes=_approx_bytes(index),
                in_use=variant.same_as(current),
                out_of_date=sum(held.get(d) != h for d, h in newest.items()),
            )
        )
    return infos


def _approx_bytes(index: DomainIndex) -> int:
    """Chunk characters (from their stored offsets) plus 4 bytes per vector dimension per chunk."""
    count = index.count_chunks()
    if count == 0:
        return 0
    sample = index.chunks.peek(1)
    embeddings = sample["embeddings"]
    dimension = len(embeddings[0]) if embeddings is not None and len(embeddings) else 0
    chars = 0
    offset = 0
    while True:
        got = index.chunks.get(include=["metadatas"], limit=5000, offset=offset)
        chars += sum(int(m["end"]) - int(m["start"]) for m in got["metadatas"] or [])
        if len(got["ids"]) < 5000:
            break
        offset += 5000
    return chars + count * dimension * 4


def variant_sources(
    settings: Settings, domain: str, client: ClientAPI | None = None
) -> tuple[list[SourceFile], list[SourceFile], list[FileOutcome]]:
    """Where each of the domain's documents can be read again: (kept originals, corpus files, not found).

    A document's kept original comes first; a demo domain's corpus folder provides the rest (and any
    corpus file not indexed anywhere yet). A document found in neither is refused with the fix.
    """
    kept_dir, corpus = originals_dir(settings, domain), settings.corpora_dir / domain / "docs"
    kept: list[SourceFile] = []
    missing: list[FileOutcome] = []
    in_corpus = {s.doc_id: s for s in collect_files([corpus])} if corpus.is_dir() else {}
    from_corpus: list[SourceFile] = []
    for doc_id, record in sorted(domain_documents(settings, domain, client).items()):
        corpus_file = in_corpus.pop(doc_id, None)  # a document indexed from an upload of the same name wins
        if record.original and (kept_dir / record.original).is_file():
            kept.append(SourceFile(doc_id=doc_id, name=record.source, path=kept_dir / record.original))
        elif corpus_file is not None:
            from_corpus.append(corpus_file)
        else:
            reason = "its original file is not kept (indexed before Triptych kept originals): upload it again"
            missing.append(FileOutcome(doc_id, record.source, "refused", reason=reason))
    return kept, from_corpus + list(in_corpus.values()), missing


def build_variant(
    settings: Settings,
    variant: Variant,
    *,
    progress: ProgressCallback | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Build (or bring up to date) a variant of a domain from the domain's documents; the others keep answering.

    Raises ValueError for chunking the variant cannot have, ChunkSizeError when a chunk would be longer
    than the model embeds.
    """
    ChunkingConfig(variant.chunk_size, variant.chunk_overlap)  # ValueError naming the fix before anything is made
    client = client or chroma_client(settings)
    kept, from_corpus, missing = variant_sources(settings, variant.domain, client)
    if embedder is None:
        embedder = LazyEmbedder(variant.embedding_model, settings.embedding_batch_size)
    elif model_key(embedder.model_name) != model_key(variant.embedding_model):
        raise ValueError(f"the embedder is {embedder.model_name}, not {variant.embedding_model}")
    chunking = ChunkingConfig(variant.chunk_size, variant.chunk_overlap, tokenizer=embedder)
    chunking.check_fits()
    index = variant.open(client, settings, create=True)
    report = IngestReport(variant.domain, variant.embedding_model)
    total = len(kept) + len(from_corpus) + len(missing)
    done = 0
    for group, originals in ((kept, originals_dir(settings, variant.domain)), (from_corpus, None)):
        if not group:
            continue
        part = ingest_sources(
            index,
            embedder,
            group,
            limits=Limits.from_settings(settings),
            chunking=chunking,
            progress=progress,
            progress_offset=done,
            progress_total=total,
            originals=originals,
        )
        report.outcomes += part.outcomes
        report.seconds += part.seconds
        done += len(group)
    for outcome in missing:
        report.outcomes.append(outcome)
        done += 1
        if progress is not None:
            progress(IngestProgress(variant.domain, done, total, outcome.doc_id, outcome.status))
    return report


def delete_variant(settings: Settings, variant: Variant, client: ClientAPI | None = None) -> bool:
    """Delete one variant; originals no other variant of the domain uses go with it. False when it was not built."""
    client = client or chroma_client(settings)
    if not any(variant.same_as(v) for v in variants_of(client, variant.domain)):
        return False
    index = variant.open(client, settings)
    kept_dir = originals_dir(settings, variant.domain)
    with index.write_lock():
        names = {r.original for r in index.documents() if r.original}
        index.drop()
        for name in sorted(names):
            if not original_in_use(client, variant.domain, name):
                discard_original(kept_dir, name)
    return True


def remove_document_everywhere(
    settings: Settings, domain: str, doc_id: str, client: ClientAPI | None = None
) -> list[Variant]:
    """Delete a document from every variant of its domain (so a later update does not bring it back).

    Its kept original goes once no variant holds it. Returns the variants it was deleted from.
    """
    client = client or chroma_client(settings)
    kept_dir = originals_dir(settings, domain)
    return [
        variant
        for variant, index in _opened(settings, client, check_domain(domain))
        if remove_document(index, doc_id, kept_dir)
    ]
