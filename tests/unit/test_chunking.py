"""Chunks keep exact offsets into their document, respect size and overlap, and know page and section."""

from __future__ import annotations

import random

import pytest

from triptych.documents.chunking import ChunkingConfig, ChunkSizeError, chunk_document
from triptych.documents.loaders import LoadedDocument, load_document
from triptych.documents.validation import DocumentKind, Limits
from triptych.testing import make_pdf

LIMITS = Limits(max_bytes=5 * 1024 * 1024, max_pdf_pages=50)


def _text(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    words = "leave policy manager days salary travel receipt laptop office contract notice".split()
    paras = []
    for _ in range(paragraphs):
        sentences = [" ".join(rng.choices(words, k=rng.randint(4, 14))).capitalize() + "." for _ in range(5)]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def assert_chunks_cover(doc: LoadedDocument, config: ChunkingConfig) -> None:
    chunks = chunk_document(doc, config)
    assert chunks, "no chunks"
    covered = 0
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert doc.text[chunk.start : chunk.end] == chunk.text  # exact offsets
        assert len(chunk.text) <= config.size
        assert not doc.text[covered : chunk.start].strip(), "text between chunks was lost"
        if i:
            assert chunk.start > chunks[i - 1].start
            assert chunks[i - 1].end - chunk.start <= config.overlap  # never more overlap than asked
        covered = max(covered, chunk.end)
    assert not doc.text[covered:].strip()


@pytest.mark.parametrize(("size", "overlap"), [(800, 120), (300, 100), (200, 0), (150, 140)])
def test_offsets_size_and_overlap(size: int, overlap: int) -> None:
    doc = LoadedDocument(DocumentKind.TEXT, _text(1, 30), "t")
    assert_chunks_cover(doc, ChunkingConfig(size, overlap))


def test_overlap_is_used() -> None:
    doc = LoadedDocument(DocumentKind.TEXT, _text(2, 20), "t")
    chunks = chunk_document(doc, ChunkingConfig(300, 100))
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_repeated_passages_get_their_own_offsets() -> None:
    # The same paragraph four times: each chunk must point at its own copy, in order.
    para = "Notice period is 3 months for all staff. " * 4
    text = "\n\n".join(f"{para}Section {i}." for i in range(4))
    doc = LoadedDocument(DocumentKind.TEXT, text, "t")
    chunks = chunk_document(doc, ChunkingConfig(120, 30))
    assert_chunks_cover(doc, ChunkingConfig(120, 30))
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))


def test_pdf_chunks_know_their_page() -> None:
    pages = [_text(10 + p, 3) + f" Marker{p + 1}." for p in range(3)]
    doc = load_document("x.pdf", make_pdf(pages), LIMITS)
    chunks = chunk_document(doc, ChunkingConfig(200, 40))
    for chunk in chunks:
        assert chunk.page == doc.page_at(chunk.start)
        assert doc.page_starts[chunk.page - 1] <= chunk.start
    marker3 = next(c for c in chunks if "Marker3" in c.text)
    assert marker3.page == 3
    assert chunks[0].page == 1


def test_markdown_chunks_know_their_section() -> None:
    md = "# Leave\n\n" + _text(3, 3) + "\n\n## Sick leave\n\n" + _text(4, 3) + "\n"
    doc = load_document("leave.md", md.encode(), LIMITS)
    chunks = chunk_document(doc, ChunkingConfig(300, 50))
    assert chunks[0].section == "Leave"
    sick = md.index("## Sick leave")
    assert all(c.section == "Sick leave" for c in chunks if c.start >= sick)
    assert any(c.text.startswith("## Sick leave") for c in chunks)  # split at the heading


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="TRIPTYCH_CHUNK_OVERLAP"):
        ChunkingConfig(100, 100)
    with pytest.raises(ValueError, match="size must be"):
        ChunkingConfig(0, 0)


class WordTokenizer:
    """Counts words as tokens; embeds at most `max_tokens` of them."""

    model_name = "word-model"

    def __init__(self, max_tokens: int = 256) -> None:
        self.max_tokens = max_tokens

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.mark.parametrize(("size", "overlap"), [(40, 8), (120, 20)])
def test_token_sized_chunks_never_exceed_the_size_in_tokens_and_keep_exact_offsets(size: int, overlap: int) -> None:
    tokens = WordTokenizer()
    doc = LoadedDocument(DocumentKind.TEXT, _text(5, 25), "t")
    config = ChunkingConfig(size, overlap, tokenizer=tokens)
    chunks = chunk_document(doc, config)
    assert len(chunks) > 2
    covered = 0
    for i, chunk in enumerate(chunks):
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert tokens.count_tokens(chunk.text) <= size
        assert not doc.text[covered : chunk.start].strip(), "text between chunks was lost"
        if i:
            shared = doc.text[chunk.start : chunks[i - 1].end] if chunks[i - 1].end > chunk.start else ""
            assert tokens.count_tokens(shared) <= overlap
        covered = max(covered, chunk.end)
    assert not doc.text[covered:].strip()
    assert config.unit == "tokens:word-model" and ChunkingConfig(size, overlap).unit == "characters"


def test_a_chunk_size_the_embedding_model_cannot_embed_whole_is_refused_naming_the_setting() -> None:
    doc = LoadedDocument(DocumentKind.TEXT, _text(6, 5), "t")
    with pytest.raises(ChunkSizeError, match=r"TRIPTYCH_CHUNK_SIZE=300 tokens .* word-model .*254 or less"):
        chunk_document(doc, ChunkingConfig(300, 20, tokenizer=WordTokenizer(max_tokens=254)))
    assert chunk_document(doc, ChunkingConfig(254, 20, tokenizer=WordTokenizer(max_tokens=254)))
