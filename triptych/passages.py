"""Context shaped for small models: the sentences of the retrieved chunks that answer the question.

A 135M-parameter model reads a few hundred well-chosen characters far better than four 800-character
chunks, and it reads them faster (prefill is most of RAG's time to first token on a CPU). So after
retrieval the chunks are cut into sentences, each sentence is scored against the question (BM25 over
the sentences of the retrieved chunks, plus the embedding model's cosine similarity when one is
given, plus a small prior for the chunk's rank), and the best sentences are kept, with `window`
neighbouring sentences on each side, until the token budget is spent. Kept sentences stay in
document order under their chunk's number `[n]`, so a citation still points at the source shown to
the user; the sources themselves stay the full chunks. The excerpts go best last: the one holding the
best sentence ends the passages, right before the question (a small model reads what is nearest).

`found_in` is the other half: which sources contain the words of an answer, computed by matching,
never the model's own citation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from triptych.evaluate.metrics import normalize_answer, without_citations
from triptych.retrieval import tokenize

# A sentence ends at . ! ? (or a closing quote/bracket after them) followed by white space. Lines
# are joined (documents are often hard-wrapped) except where a line starts or ends a block: a blank
# line, a heading, a list item or a table row (any line with a `|`) stands alone.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_BLOCK_LINE = re.compile(r"\s*(#{1,6}\s|[-*+\u2022]\s|\d+[.)]\s)|.*\|")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")  # |---|:---:|
_MIN_SENTENCE_CHARS = 3


def approx_tokens(text: str) -> int:
    """Tokens of `text` for a budget: about four characters a token (English, BPE or WordPiece)."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class Sentence:
    """One sentence of a retrieved chunk: `chunk_text[start:end] == text`."""

    n: int  # the chunk's number, as cited: [n]
    index: int  # position among the chunk's sentences
    text: str
    start: int
    end: int


def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of lines that belong together (a paragraph, a list item, a table row)."""
    blocks: list[tuple[int, int]] = []
    start = None
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.strip()
        standalone = bool(_BLOCK_LINE.match(line))
        if not body or standalone:
            if start is not None:
                blocks.append((start, pos))
                start = None
            if body:
                blocks.append((pos, pos + len(line)))
        elif start is None:
            start = pos
        pos += len(line)
    if start is not None:
        blocks.append((start, pos))
    return blocks


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, in order, stripped of surrounding white space."""
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text):
        pos = block_start
        block = text[block_start:block_end]
        ends = [block_start + m.end() for m in _SENTENCE_END.finditer(block)] + [block_end]
        for end in ends:
            piece = text[pos:end]
            s, e = pos + len(piece) - len(piece.lstrip()), pos + len(piece.rstrip())
            if e - s >= _MIN_SENTENCE_CHARS and not _TABLE_RULE.match(text[s:e]):
                spans.append((s, e))
            pos = end
    return spans


def is_answer_candidate(sentence: str) -> bool:
    """Whether a sentence can answer anything: not a heading, a bold title line or a two-word fragment."""
    text = sentence.strip()
    if text.startswith("#") or (text.startswith("**") and text.endswith("**")):
        return False
    return len(text.split()) >= 3 or any(ch.isdigit() for ch in text) or "|" in text


@dataclass(frozen=True)
class SelectionConfig:
    """How much context a small model gets, and how it is chosen."""

    budget_tokens: int = 160  # at most this many (approximate) tokens of passage text; 0: whole chunks
    window: int = 0  # neighbouring sentences kept on each side of a chosen one
    with_title: bool = True  # each excerpt is headed by its document's title (and section)
    vector_weight: float = 1.0  # weight of the embedding similarity against BM25 (0: BM25 only)
    rank_weight: float = 0.1  # prior for sentences of higher-ranked chunks
    best_last: bool = True  # excerpts ordered by their best sentence, the best last; False: by source number


@dataclass(frozen=True)
class Excerpt:
    """The chosen sentences of one source, in document order, under the source's number."""

    n: int
    heading: str
    sentences: tuple[Sentence, ...]
    source_text: str  # the whole chunk, so neighbouring sentences keep the white space between them

    @property
    def text(self) -> str:
        """The sentences in order; neighbours joined as in the chunk, a gap marked with '...'."""
        parts: list[str] = []
        previous: Sentence | None = None
        for s in self.sentences:
            if previous is not None:
                parts.append(" ... " if s.index > previous.index + 1 else self.source_text[previous.end : s.start])
            parts.append(s.text)
            previous = s
        return "".join(parts)


class PassageLike:
    """What selection reads of a source: its number, title, section and text (duck-typed)."""

    n: int
    title: str
    source: str
    section: str | None
    text: str


_TAG = re.compile(r"<[^<>]{1,200}>")
HEADING_CHARS = 90  # a long paper title, repeated for each of its passages, would crowd out the passages


def _heading(source: PassageLike, with_title: bool) -> str:
    """`title - section` without markup (Markdown's `<a name=...>` anchors), cut at a word to HEADING_CHARS."""
    if not with_title:
        return ""
    title = _TAG.sub("", source.title or source.source).strip() or source.source
    section = _TAG.sub("", getattr(source, "section", None) or "").strip()
    heading = " ".join((f"{title} - {section}" if section and section != title else title).split())
    if len(heading) <= HEADING_CHARS:
        return heading
    return heading[:HEADING_CHARS].rsplit(" ", 1)[0].rstrip(" -,:;") + "..."


def _scores(question: str, sentences: list[Sentence], embed: Callable[[list[str]], np.ndarray] | None,
            config: SelectionConfig, rank_of: dict[int, int]) -> np.ndarray:  # fmt: skip
    tokens = [tokenize(s.text) for s in sentences]
    query = tokenize(question)
    lexical = np.zeros(len(sentences))
    if query and any(tokens):
        bm25 = BM25Okapi([t or ["\u2205"] for t in tokens], k1=1.2, b=0.3)  # b: short sentences are not better
        lexical = np.asarray(bm25.get_scores(query), dtype=float)
        lexical = np.clip(lexical, 0.0, None)
        top = lexical.max()
        lexical = lexical / top if top > 0 else lexical
    score = lexical
    if embed is not None and config.vector_weight > 0:
        vectors = embed([question, *(s.text for s in sentences)])
        cosine = vectors[1:] @ vectors[0]
        score = score + config.vector_weight * np.asarray(cosine, dtype=float)
    prior = np.asarray([1.0 / (rank_of[s.n] + 1) for s in sentences])
    candidate = np.asarray([0.0 if is_answer_candidate(s.text) else -1e9 for s in sentences])
    return score + config.rank_weight * prior + candidate


def select_excerpts(
    question: str,
    sources: Sequence[PassageLike],
    config: SelectionConfig,
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    count_tokens: Callable[[str], int] = approx_tokens,
) -> list[Excerpt]:
    """The sentences of `sources` that best answer `question`, within the budget, one excerpt per source.

    The best sentence is always kept whole, even when it alone is over the budget, so a non-empty list of
    sources never yields an empty context. With `budget_tokens == 0` every sentence is kept. Excerpts come
    best last (`config.best_last`), else (and always with whole chunks) in the sources' order.
    """
    sentences: list[Sentence] = []
    for source in sources:
        for i, (s, e) in enumerate(split_sentences(source.text)):
            sentences.append(Sentence(source.n, i, source.text[s:e], s, e))
    if not sentences:
        return []
    chosen: set[tuple[int, int]] = set()
    best_of: dict[int, float] = {}  # each source's best chosen sentence score
    if config.budget_tokens <= 0:
        chosen = {(s.n, s.index) for s in sentences}
    else:
        rank_of = {source.n: rank for rank, source in enumerate(sources)}
        by_key = {(s.n, s.index): s for s in sentences}
        scores = _scores(question, sentences, embed, config, rank_of)
        order = np.argsort(-scores, kind="stable")
        spent = 0
        for i in order:
            best = sentences[int(i)]
            group = [
                by_key[(best.n, j)]
                for j in range(best.index - config.window, best.index + config.window + 1)
                if (best.n, j) in by_key and (best.n, j) not in chosen
            ]
            cost = sum(count_tokens(s.text) for s in group)
            if chosen and spent + cost > config.budget_tokens:
                if spent + count_tokens(best.text) > config.budget_tokens or (best.n, best.index) in chosen:
                    continue
                group, cost = [best], count_tokens(best.text)  # the window does not fit: the sentence alone
            chosen.update((s.n, s.index) for s in group)
            best_of.setdefault(best.n, float(scores[int(i)]))  # the first chosen of a source is its best
            spent += cost
            if spent >= config.budget_tokens:
                break
    chosen |= _headers_of_chosen_rows(sentences, chosen, {source.n: source.text for source in sources})
    excerpts = []
    for source in sources:
        kept = tuple(s for s in sentences if s.n == source.n and (s.n, s.index) in chosen)
        if kept:
            excerpts.append(Excerpt(source.n, _heading(source, config.with_title), kept, source.text))
    if config.best_last and best_of:
        excerpts.sort(key=lambda e: best_of.get(e.n, -math.inf))  # stable: ties keep the sources' order
    return excerpts


def _headers_of_chosen_rows(
    sentences: list[Sentence], chosen: set[tuple[int, int]], texts: dict[int, str]
) -> set[tuple[int, int]]:
    """The header row of each table a chosen row belongs to: '2024 | 12' means little without
    'Year | Revenue'. A table is a run of `|` lines with no blank line between them; its first line
    in the chunk is taken as its header (a few tokens over the budget at most)."""
    headers: set[tuple[int, int]] = set()
    header: Sentence | None = None
    previous: Sentence | None = None
    for s in sentences:
        row = "|" in s.text
        joined = (
            previous is not None
            and previous.n == s.n
            and "|" in previous.text
            and not _BLANK_LINE.search(texts[s.n][previous.end : s.start])
        )
        if row and not joined:
            header = s
        if row and header is not None and (s.n, s.index) in chosen and header is not s:
            headers.add((header.n, header.index))
        if not row:
            header = None
        previous = s
    return headers


# Chat-template control tokens (`<|im_start|>`, `<|eot_id|>`...): in a passage they could open a turn of
# their own once the server renders the template, so they never reach the model from a document.
_CONTROL_TOKEN = re.compile(r"<\|[^<>|\s]{1,40}\|>")


def as_data(text: str) -> str:
    """Document text as it may go into a prompt: without chat-template control tokens."""
    return _CONTROL_TOKEN.sub(" ", text)


_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*\*|__|`+)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_MD_LIST_OR_QUOTE = re.compile(r"^[ \t]*(?:[-*+]|>)[ \t]+", re.MULTILINE)
_MD_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.MULTILINE)


def readable_source(chunk: str) -> str:
    """A chunk as a person reads it on a source card or in a report: the document's markdown marks (`## `, `**`, list
    bullets, table rules) removed, words and line order kept. Still escaped before rendering."""
    text = _MD_TABLE_RULE.sub("", chunk)
    text = _MD_HEADING.sub("", text)
    text = _MD_LIST_OR_QUOTE.sub("", text)
    return _MD_EMPHASIS.sub(r"\2", text)


def excerpts_context(excerpts: Sequence[Excerpt]) -> str:
    """The excerpts as the model sees them: `[n] (heading)` then the sentences, one block each (as data)."""
    blocks = []
    for e in excerpts:
        head = f"[{e.n}] ({as_data(e.heading)})" if e.heading else f"[{e.n}]"
        blocks.append(f"{head}\n{as_data(e.text)}")
    return "\n\n".join(blocks)


def found_in(answer: str, sources: Sequence[PassageLike], question: str = "") -> list[int]:
    """Numbers of the sources that contain the answer's words, the best match first.

    A source counts when it holds, as whole normalised words, a run of the answer's words that
    carries meaning: two or more words with a content word among them, or the whole answer, and
    at least one word that the question did not already say (citations like [2] are not words) (an answer that repeats
    the question is found everywhere). Sources are ordered by their longest such run. This is a
    match computed by Triptych, shown as "found in [n]"; it says nothing about what the model cited.
    """
    words = normalize_answer(without_citations(answer)).split()
    asked = set(tokenize(normalize_answer(question)))
    if not words:
        return []
    best: dict[int, int] = {}
    for source in sources:
        text = f" {normalize_answer(source.text)} "
        for length in range(min(len(words), 24), 0, -1):
            runs = (words[i : i + length] for i in range(len(words) - length + 1))
            if any(_meaningful(run, len(words), asked) and f" {' '.join(run)} " in text for run in runs):
                best[source.n] = length
                break
    return sorted(best, key=lambda n: (-best[n], n))


def _meaningful(run: list[str], answer_words: int, asked: set[str]) -> bool:
    new = [t for t in tokenize(" ".join(run)) if t not in asked]
    if not new:  # stop words or the question's own words only: "is in the", "the Leipzig production floor"
        return False
    return len(run) >= 2 or len(run) == answer_words
