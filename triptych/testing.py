"""Fakes for unit tests of any module: a deterministic embedder and throw-away Chroma indexes.

    with temporary_index() as index:
        add_texts(index, {"leave.md": "# Leave\\n\\nEmployees get 28 days of annual leave."})
        retriever = Retriever(index, HashEmbedder(), top_k=3, min_score=0.0, hybrid=False)

The fake embedder is a hashed bag of words: texts that share words get similar vectors, so search
results are meaningful and repeatable, with no model to load.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import chromadb
import numpy as np
from chromadb.api import ClientAPI

from triptych.documents.chunking import ChunkingConfig
from triptych.documents.validation import Limits
from triptych.embeddings import Embedder
from triptych.index import DomainIndex, chroma_settings
from triptych.ingest import IngestReport, SourceFile, ingest_sources

_WORD = re.compile(r"[a-z0-9]+")


_TOKENS = re.compile(r"\w+|[^\w\s]")


class HashEmbedder:
    """Deterministic bag-of-words vectors (signed feature hashing, L2-normalised); records its calls."""

    def __init__(self, dimension: int = 256, model_name: str | None = None) -> None:
        self.dimension = dimension
        self._name = model_name or f"hash-{dimension}"
        self.calls: list[tuple[str, int]] = []  # ("documents", n) or ("query", 1)

    @property
    def model_name(self) -> str:
        """A name of its own, so its vectors get their own collections."""
        return self._name

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimension
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0  # texts without words still get a valid unit vector
            return vec
        return vec / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text."""
        self.calls.append(("documents", len(texts)))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """The query's unit vector."""
        self.calls.append(("query", 1))
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks, as a stand-in for a tokenizer."""
        return len(_TOKENS.findall(text))

    max_tokens = 512


def ephemeral_client() -> ClientAPI:
    """An in-memory Chroma client. In-process clients share data: use unique collection names."""
    return chromadb.EphemeralClient(settings=chroma_settings())


def unique_domain(prefix: str = "test") -> str:
    """A domain name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextmanager
def temporary_index(
    client: ClientAPI | None = None,
    *,
    embedder: Embedder | None = None,
    domain: str | None = None,
) -> Iterator[DomainIndex]:
    """A fresh index (in memory unless a client is given), deleted when the block ends."""
    index = DomainIndex(
        client or ephemeral_client(),
        domain or unique_domain(),
        (embedder or HashEmbedder()).model_name,
    )
    try:
        yield index
    finally:
        index.drop()


def add_texts(
    index: DomainIndex,
    documents: Mapping[str, str],
    *,
    embedder: Embedder | None = None,
    chunk_size: int = 800,
    chunk_overlap: int = 120,
) -> IngestReport:
    """Ingest in-memory texts ({file name: text}; .md, .txt or .html names) into an index.

    Without an embedder, a HashEmbedder named like the index's model is used.
    """
    embedder = embedder or HashEmbedder(model_name=index.embedding_model)
    return ingest_sources(
        index,
        embedder,
        [SourceFile.from_bytes(name, text.encode()) for name, text in documents.items()],
        limits=Limits(max_bytes=25 * 1024 * 1024, max_pdf_pages=500),
        chunking=ChunkingConfig(chunk_size, chunk_overlap),
    )


def make_pdf(pages: Sequence[str], *, title: str | None = None, outline: Sequence[str] | None = None) -> bytes:
    """A real PDF (fpdf2) with one page per text; `outline` puts a bookmarked heading atop each page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    if title:
        pdf.set_title(title)
    for i, text in enumerate(pages):
        pdf.add_page()
        if outline and outline[i]:
            pdf.start_section(outline[i])
            pdf.multi_cell(0, 8, outline[i], new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def make_docx(
    paragraphs: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    table: Sequence[Sequence[str]] | None = None,
) -> bytes:
    """A real DOCX (python-docx): (style, text) paragraphs, e.g. ("Heading 1", "Leave"), ("Normal", "...").

    "Title" and "Heading N" become headings; other styles are paragraph styles ("List Bullet", ...).
    An optional table is appended at the end.
    """
    import io

    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for style, text in paragraphs:
        if style == "Title":
            document.add_heading(text, level=0)
        elif style.startswith("Heading "):
            document.add_heading(text, level=int(style.split()[1]))
        else:
            document.add_paragraph(text, style=style)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
