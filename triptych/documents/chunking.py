"""Split a document into overlapping chunks that keep their character offsets into its text.

LangChain's RecursiveCharacterTextSplitter does the splitting (paragraphs, then lines, then words);
each chunk is then located in the document so that `text[start:end] == chunk.text` always holds:
the UI highlights exactly that passage, and a PDF chunk knows the page it starts on.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from triptych.documents.loaders import LoadedDocument
from triptych.documents.validation import DocumentKind


@dataclass(frozen=True)
class ChunkingConfig:
    """Characters per chunk and characters shared by neighbouring chunks."""

    size: int
    overlap: int

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
    """One passage of a document: `text == document.text[start:end]`."""

    index: int
    text: str
    start: int
    end: int
    page: int | None = None
    section: str | None = None


def _splitter(kind: DocumentKind, config: ChunkingConfig) -> RecursiveCharacterTextSplitter:
    if kind is DocumentKind.MARKDOWN:
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=config.size, chunk_overlap=config.overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=config.size, chunk_overlap=config.overlap)


def chunk_document(document: LoadedDocument, config: ChunkingConfig) -> list[Chunk]:
    """The document's chunks in order, each with its offsets, page (PDF) and section heading."""
    text = document.text
    chunks: list[Chunk] = []
    prev_start, prev_end = -1, 0
    for piece in _splitter(document.kind, config).split_text(text):
        start = _locate(text, piece, prev_start, prev_end, config.overlap)
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
