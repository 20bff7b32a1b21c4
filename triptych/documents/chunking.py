"""Split a document into overlapping chunks that keep their character offsets into its text.

LangChain's RecursiveCharacterTextSplitter does the splitting (paragraphs, then lines, then words);
each chunk is then located in the document so that `text[start:end] == chunk.text` always holds:
the UI highlights exactly that passage, and a PDF chunk knows the page it starts on.

Sizes are measured in tokens of the embedding model when a tokenizer is given (what ingestion
does), so a chunk is never longer than the model reads: all-MiniLM-L6-v2 embeds at most 254
tokens of a text and silently ignores the rest. Without one they are characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from triptych.documents.loaders import LoadedDocument
from triptych.documents.validation import DocumentKind
from triptych.settings import ConfigError


class Tokenizer(Protocol):
    """What chunking needs of an embedding model: its token count and the most it reads."""

    @property
    def model_name(self) -> str:
        """The model's name, for messages."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text`, without special tokens."""
        ...

    @property
    def max_tokens(self) -> int:
        """The longest text the model embeds whole."""
        ...


class ChunkSizeError(ConfigError):
    """The chunk size is more than the embedding model can embed; the message names the setting."""


# The splitter only knows where a chunk's overlap may start in characters: a token is at most this many.
_MAX_CHARS_PER_TOKEN = 24


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk length and the length shared by neighbouring chunks: tokens of `tokenizer`, else characters."""

    size: int
    overlap: int
    tokenizer: Tokenizer | None = field(default=None, compare=False)

    @property
    def unit(self) -> str:
        """What size and overlap count: 'characters', or 'tokens:<embedding model>'."""
        return "characters" if self.tokenizer is None else f"tokens:{self.tokenizer.model_name}"

    def check_fits(self) -> None:
        """Raise ChunkSizeError when a chunk could be longer than the embedding model reads."""
        if self.tokenizer is not None and self.size > (most := self.tokenizer.max_tokens):
            raise ChunkSizeError(
                f"TRIPTYCH_CHUNK_SIZE={self.size} tokens is more than {self.tokenizer.model_name} embeds "
                f"({most} tokens; the rest of each chunk would be ignored): set TRIPTYCH_CHUNK_SIZE to {most} or less"
            )

    def __post_init__(self) -> None:
        if self.size < 1 or self.overlap < 0:
            raise ValueError(f"chunk size must be >= 1 and overlap >= 0 (got {self.size}, {self.overlap})")
        if self.overlap >= self.size:
            raise ValueError(
                f"chunk overlap ({self.overlap}) must be smaller than chunk size ({self.size}): lower "
                "TRIPTYCH_CHUNK_OVERLAP or raise TRIPTYCH_CHUNK_SIZE"
            )


@dataclass(frozen=True)
class Chunk:
    """One passage of a document: the one chunk type, from chunking to the sources an answer shows.

    Each step fills in more of it: chunking the passage (`text == document.text[start:end]`, page,
    section, `index` in the document); the index the document it belongs to (doc_id, source, title,
    version, chunk_id); retrieval its scores; a pipeline the number `n` the answer cites it by, [n].
    Steps copy it with `dataclasses.replace`; JSON and LangChain `Document`s convert field by field.
    The first eight fields keep the order `RetrievedChunk(...)` was called with positionally.
    """

    chunk_id: str = ""
    doc_id: str = ""
    source: str = ""  # file name
    title: str = ""
    text: str = ""
    start: int = 0  # character offsets of `text` in the document's text
    end: int = 0
    score: float = 0.0  # retrieved: cosine similarity to the question, in [-1, 1]
    page: int | None = None  # PDF: the page the chunk starts on
    section: str | None = None  # the heading the chunk falls under, where the format has headings
    fused_score: float | None = None  # hybrid retrieval only: the reciprocal-rank-fusion score that ordered it
    index: int = 0  # position among its document's chunks
    version: str = ""  # the document version it was cut from (triptych.index.version_of)
    n: int = 0  # the number an answer cites it by: [n] (0: not given to a model)
    flags: str = (
        ""  # text aimed at the model found in it at ingestion ('; '-joined reasons, triptych.documents.injection)
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        """Rebuild from `to_dict` output (or a `Document`'s metadata); unknown keys are ignored."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_document(self) -> Document:
        """A LangChain Document: the text as page content, every other field (the cosine score too) as metadata."""
        meta = {k: v for k, v in self.to_dict().items() if k != "text"}
        return Document(page_content=self.text, metadata=meta, id=self.chunk_id or None)

    @classmethod
    def from_document(cls, document: Document) -> Chunk:
        """The chunk a `to_document` Document was made from."""
        return cls.from_dict({**document.metadata, "text": document.page_content})


def _splitter(kind: DocumentKind, config: ChunkingConfig) -> RecursiveCharacterTextSplitter:
    length = len if config.tokenizer is None else config.tokenizer.count_tokens
    sizes = {"chunk_size": config.size, "chunk_overlap": config.overlap, "length_function": length}
    if kind is DocumentKind.MARKDOWN:
        return RecursiveCharacterTextSplitter.from_language(Language.MARKDOWN, **sizes)
    return RecursiveCharacterTextSplitter(**sizes)


def chunk_document(document: LoadedDocument, config: ChunkingConfig) -> list[Chunk]:
    """The document's chunks in order, each with its offsets, page (PDF) and section heading."""
    config.check_fits()
    text = document.text
    chunks: list[Chunk] = []
    prev_start, prev_end = -1, 0
    overlap_chars = config.overlap if config.tokenizer is None else config.overlap * _MAX_CHARS_PER_TOKEN
    for piece in _splitter(document.kind, config).split_text(text):
        start = _locate(text, piece, prev_start, prev_end, overlap_chars)
        if start < 0:  # the splitter only ever returns substrings; this would be a bug in it
            raise RuntimeError(f"chunk {len(chunks)} of {document.title!r} is not a substring of the document")
        end = start + len(piece)
        chunks.append(
            Chunk(
                index=len(chunks),
                text=piece,
                start=start,
                end=end,
                page=document.page_at(start),
                section=document.section_at(start),
            )
        )
        prev_start, prev_end = start, end
    return chunks


def _locate(text: str, piece: str, prev_start: int, prev_end: int, overlap: int) -> int:
    """Where `piece` starts in `text`, given where the previous chunk was.

    The splitter's chunks cover the text except whitespace: the next one starts at most `overlap`
    characters before the previous one's end, brings new text, and leaves only whitespace between
    the two. The first occurrence that fits is the chunk itself, not an earlier or later repeat.
    """
    start = text.find(piece, max(prev_start + 1, prev_end - overlap - 1, 0))
    while start >= 0:
        ends_later = start + len(piece) > prev_end
        if ends_later and (start <= prev_end or not text[prev_end:start].strip()):
            return start
        if start > prev_end:
            break
        start = text.find(piece, start + 1)
    start = text.find(piece, prev_start + 1)
    return start if start >= 0 else text.find(piece)
