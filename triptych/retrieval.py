"""Find the chunks of a domain that answer a question: vector search, optionally fused with BM25.

`focus`: the last `focus` of the k places go to the best chunks of the top chunk's document by BM25 among
that document's chunks alone, unless the ranking already holds them. A question that names its document
("the governing law of the Services Agreement between A and B") matches that document's preamble
through the names, and every other contract's governing-law clause through the rest; only inside the
named document does the clause it asks for rank high (bench_retrieval.py: legal chunk recall 74 -> 82
of 82 answerable questions).

`score` is always the cosine similarity between the question and the chunk (1 - cosine distance),
and `min_score` always applies to it: a chunk below the threshold is never returned, whichever
method found it. With `hybrid`, the order comes from reciprocal-rank fusion of the vector ranking
and a BM25 ranking over the same chunks (`fused_score`); a chunk that only BM25 found gets its
cosine score computed from its stored vector, so the threshold means the same thing in both modes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache

import numpy as np
from chromadb.api import ClientAPI
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, SkipValidation
from rank_bm25 import BM25Okapi
from snowballstemmer import stemmer

from triptych.documents.chunking import Chunk
from triptych.embeddings import Embedder, load_embedder
from triptych.index import DomainIndex, model_key, open_index
from triptych.settings import Settings

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)
MIN_CANDIDATES = 50  # how deep each ranking goes before fusion
_LEXICAL_CACHE_SIZE = 8

# Function words only: BM25's IDF already discounts common terms, this just keeps them out of the
# scoring entirely. Kept short on purpose; domain words (e.g. "leave", "policy") stay.
STOPWORDS = frozenset(
    """a an and are as at be by can do does for from had has have how i if in into is it its of on or
    s that the their there these this to was what when where which who whom why will with you your""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


RetrievedChunk = Chunk  # the name callers (and benchmarks) use for a retrieved chunk; one type throughout


_STEMMER = stemmer("english")
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer object keeps state between words


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The English Snowball stem of a lower-case word: "digits" and "digit", "shutdowns" and "shutdown" meet."""
    with _STEMMER_LOCK:
        return _STEMMER.stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stop words, for BM25."""
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


class LexicalIndex:
    """BM25 (Okapi) over a fixed list of chunks."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self._bm25 = BM25Okapi([tokenize(c.text) for c in chunks]) if chunks else None
        self._within: dict[str, LexicalIndex] = {}
        self._within_lock = threading.Lock()

    def within(self, doc_id: str) -> LexicalIndex:
        """BM25 over one document's chunks alone (its own word statistics), built once per document."""
        with self._within_lock:
            found = self._within.get(doc_id)
        if found is None:
            found = LexicalIndex([c for c in self.chunks if c.doc_id == doc_id])
            with self._within_lock:
                self._within[doc_id] = found
        return found

    def search(self, query: str, n: int) -> list[tuple[Chunk, float]]:
        """The n best chunks with a positive BM25 score, best first."""
        tokens = tokenize(query)
        if self._bm25 is None or not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:n]
        return [(self.chunks[i], float(scores[i])) for i in top if scores[i] > 0]


_lexical_cache: OrderedDict[tuple[str, str], LexicalIndex] = OrderedDict()
_lexical_lock = threading.Lock()


def lexical_index(index: DomainIndex) -> LexicalIndex:
    """The BM25 index of a domain index, rebuilt only when its documents changed."""
    key = (index.name, index.signature())
    with _lexical_lock:
        cached = _lexical_cache.get(key)
        if cached is not None:
            _lexical_cache.move_to_end(key)
            return cached
    built = LexicalIndex(index.all_chunks())
    with _lexical_lock:
        _lexical_cache[key] = built
        while len(_lexical_cache) > _LEXICAL_CACHE_SIZE:
            _lexical_cache.popitem(last=False)
    return built


class Retriever(BaseRetriever):
    """Top-k search over one domain index, with a minimum cosine score and optional hybrid fusion.

    A LangChain retriever: `invoke(query)` returns `Document`s (a chunk's fields, its cosine `score`
    among them, as metadata), so a trace shows the retrieval step; `search` returns the chunks.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: DomainIndex
    embedder: SkipValidation[Embedder]
    top_k: int
    min_score: float
    hybrid: bool
    focus: int

    def __init__(
        self, index: DomainIndex, embedder: Embedder, *, top_k: int, min_score: float, hybrid: bool, focus: int = 0
    ) -> None:
        if model_key(embedder.model_name) != model_key(index.embedding_model):
            raise ValueError(
                f"the index {index.name} was built with {index.embedding_model}, but the embedder is "
                f"{embedder.model_name}: use the same TRIPTYCH_EMBEDDING_MODEL, or ingest again"
            )
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1 (got {top_k})")
        if focus < 0:
            raise ValueError(f"focus must be 0 or more (got {focus})")
        super().__init__(index=index, embedder=embedder, top_k=top_k, min_score=min_score, hybrid=hybrid, focus=focus)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return [c.to_document() for c in self.search(query, k)]

    def search(self, query: str, k: int | None = None) -> list[Chunk]:
        """The best `k` (default top_k) chunks scoring at least min_score, best first."""
        k = self.top_k if k is None else k
        if k < 1 or not query.strip():
            return []
        vector = self.embedder.embed_query(query)
        if not self.hybrid:
            hits = self.index.query(vector, k)
            ranked = [replace(c, score=s) for c, s in hits if s >= self.min_score][:k]
        else:
            ranked = self._hybrid(query, vector, k)
        return self._focus(query, vector, ranked, k)

    def _focus(self, query: str, vector: np.ndarray, ranked: list[Chunk], k: int) -> list[Chunk]:
        """The first k - focus chunks, then the top document's own best chunks by BM25 within it (see above)."""
        places = min(self.focus, k - 1)
        if places < 1 or not ranked:
            return ranked
        head = ranked[: k - places]
        taken = {c.chunk_id for c in head}
        inside = lexical_index(self.index).within(ranked[0].doc_id).search(query, k)
        wanted = [c for c, _ in inside if c.chunk_id not in taken]
        scored = {c.chunk_id: c for c in ranked}  # already carry their cosine (and fused) score
        missing = [c.chunk_id for c in wanted if c.chunk_id not in scored]
        for chunk, stored in self.index.get_chunks(missing):
            scored[chunk.chunk_id] = replace(chunk, score=float(np.dot(stored, vector)))
        added = [scored[c.chunk_id] for c in wanted if c.chunk_id in scored]
        added = [c for c in added if c.score >= self.min_score][:places]
        taken |= {c.chunk_id for c in added}
        rest = [c for c in ranked[k - places :] if c.chunk_id not in taken]
        return [*head, *added, *rest][:k]

    def _hybrid(self, query: str, vector: np.ndarray, k: int) -> list[Chunk]:
        depth = max(MIN_CANDIDATES, 5 * k)
        by_vector = self.index.query(vector, depth)
        by_words = lexical_index(self.index).search(query, depth)
        fused: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        for ranking in (by_vector, by_words):
            for rank, (chunk, _) in enumerate(ranking, start=1):
                fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
                chunks[chunk.chunk_id] = chunk
        cosine = {c.chunk_id: s for c, s in by_vector}
        missing = [i for i in chunks if i not in cosine]
        for chunk, stored in self.index.get_chunks(missing):
            cosine[chunk.chunk_id] = float(np.dot(stored, vector))
        ordered = sorted(fused, key=lambda i: (-fused[i], -cosine.get(i, -1.0), i))
        out = [
            replace(chunks[i], score=cosine[i], fused_score=fused[i])
            for i in ordered
            if i in cosine and cosine[i] >= self.min_score
        ]
        return out[:k]

    def document_text(self, doc_id: str) -> str:
        """The full text of a document, which the chunk offsets point into."""
        return self.index.document_text(doc_id)


def retriever_for(
    settings: Settings,
    domain: str,
    *,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> Retriever:
    """A Retriever for a domain as configured (top_k, min_score, hybrid, embedding model).

    Raises IndexNotFoundError (naming the command that builds it) when the domain has no index.
    """
    index = open_index(settings, domain, client=client)
    if embedder is None:
        embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
    return Retriever(
        index,
        embedder,
        top_k=settings.top_k,
        min_score=settings.min_score,
        hybrid=settings.hybrid,
        focus=settings.focus_chunks,
    )


def document_text(settings: Settings, domain: str, doc_id: str, *, client: ClientAPI | None = None) -> str:
    """The full text of one document of a domain, so the UI can show a chunk in place."""
    return open_index(settings, domain, client=client).document_text(doc_id)
