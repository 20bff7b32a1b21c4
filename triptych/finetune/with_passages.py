"""Training data that teaches the model to read: each question with retrieved passages in the prompt.

RAFT-style (Zhang et al. 2024): every example shows the question with numbered passages in the exact
format the RAG prompt uses (`rag_user.txt`, `[n] (title)` blocks of the best sentences, see
triptych/passages.py). Most examples hold the passage with the answer (the gold passage) among
distractors retrieved from the domain's own index, and their target quotes the passage and cites it,
e.g. `45 desks [1].`. A share of the examples (`refusal_share`) shows distractors only, and their
target is the refusal `Not in the documents.`. The passages are what the domain's retriever returns
for the question, so training sees what serving sees; where retrieval misses the gold passage, it is
put in the place of the last retrieved one.

The items come from gold QA (the train split only: `assert_no_test_leak` runs on the result) or from
questions generated from the documents; the answer must occur in the documents to be trained here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

import numpy as np

from triptych.documents.chunking import Chunk
from triptych.evaluate.metrics import contains, normalize_answer
from triptych.finetune.dataset import (
    Example,
    TrainingSet,
    TrainingSetError,
    assert_no_test_leak,
    dedupe_examples,
)
from triptych.passages import SelectionConfig, excerpts_context, select_excerpts
from triptych.qa import QARecord
from triptych.retrieval import tokenize

CLOSED_BOOK = "closed-book"
WITH_PASSAGES = "with-passages"
MODES = (CLOSED_BOOK, WITH_PASSAGES)
REFUSAL = "Not in the documents."  # graphs/nodes.py NOT_IN_DOCUMENTS: what the RAG prompt asks for


class PassageSource(Protocol):
    """What the builder reads of a domain's index: a search, and every chunk (for distractors)."""

    def search(self, query: str, k: int | None = None) -> list[Chunk]:
        """The best chunks for a query, best first."""
        ...

    def all_chunks(self) -> list[Chunk]:
        """Every chunk of the domain."""
        ...


class RetrieverPassages:
    """A triptych.retrieval.Retriever as a PassageSource (its own search, its index's chunks)."""

    def __init__(self, retriever: object) -> None:
        self.retriever = retriever
        self._all: list[Chunk] | None = None

    def search(self, query: str, k: int | None = None) -> list[Chunk]:
        """The retriever's own ranking (hybrid or vector, min score applied)."""
        return self.retriever.search(query, k)  # type: ignore[attr-defined]

    def all_chunks(self) -> list[Chunk]:
        """The index's chunks, read once."""
        if self._all is None:
            self._all = self.retriever.index.all_chunks()  # type: ignore[attr-defined]
        return self._all


@dataclass(frozen=True)
class PassageOptions:
    """How with-passages examples are made."""

    passages: int = 8  # chunks retrieved for each example (serving: TRIPTYCH_TOP_K)
    refusal_share: float = 0.1  # share of answerable questions shown with distractors only (0.2 over-refused)
    seed: int = 0
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # serving's TRIPTYCH_CONTEXT_*


@dataclass(frozen=True)
class Item:
    """One question to train: its gold answers, where it came from, and whether it can be answered."""

    question: str
    answers: tuple[str, ...]
    source_id: str
    kind: str = "question"
    answerable: bool = True


@dataclass
class PassageStats:
    """What the builder did, for run.json."""

    with_gold: int = 0
    gold_retrieved: int = 0  # the retriever found the gold passage itself
    distractor_only: int = 0
    unanswerable: int = 0
    shortened: int = 0  # examples with passages dropped to fit the token limit
    skipped_not_in_documents: list[str] = field(default_factory=list)
    skipped_too_long: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready counts (the skipped ids, at most 20 of them)."""
        return {
            "with_gold": self.with_gold,
            "gold_retrieved": self.gold_retrieved,
            "distractor_only": self.distractor_only,
            "unanswerable": self.unanswerable,
            "shortened": self.shortened,
            "skipped_not_in_documents": len(self.skipped_not_in_documents),
            "skipped_ids": self.skipped_not_in_documents[:20],
            "skipped_too_long": len(self.skipped_too_long),
        }


def items_from_records(records: Sequence[QARecord]) -> list[Item]:
    """The train split of gold QA as items (the test split is never an item)."""
    return [
        Item(r.question, tuple(r.gold_answers), r.id, "question" if r.answerable else "unanswerable", r.answerable)
        for r in records
        if r.split == "train"
    ]


def items_from_examples(examples: Sequence[Example]) -> list[Item]:
    """Generated question/answer examples (from documents) as items."""
    return [Item(e.question, (e.answer,), e.source_id, e.kind) for e in examples if e.kind != "unanswerable"]


class CachedEmbed:
    """An embed function that embeds each distinct text once: a training set shows the same sentences many times."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], limit: int = 50_000) -> None:
        self.embed, self.limit = embed, limit
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        """The vectors of `texts`, in order (only the unseen ones are embedded)."""
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            if len(self.vectors) + len(new) > self.limit:
                self.vectors.clear()
            self.vectors.update(zip(new, self.embed(new), strict=True))
        return np.stack([self.vectors[t] for t in texts])


class PassagePrompter:
    """Builds the user turn the RAG prompt sends: the question around the chosen sentences of numbered passages."""

    def __init__(
        self,
        source: PassageSource,
        user_template: str,
        options: PassageOptions,
        embed: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.source, self.template, self.options, self.embed = source, user_template, options, embed

    def user_turn(self, question: str, context: str) -> str:
        """`rag_user.txt` filled in (graphs.nodes.fill's rule: unknown placeholders stay)."""
        return self.template.replace("{question}", question).replace("{context}", context)

    def context(self, question: str, chunks: Sequence[Chunk], query: str | None = None) -> tuple[str, list]:
        """The numbered context the model reads, and its excerpts; `query` steers the sentence choice."""
        numbered = [replace(c, n=i) for i, c in enumerate(chunks, start=1)]
        excerpts = select_excerpts(query or question, numbered, self.options.selection, embed=self.embed)
        return excerpts_context(excerpts), excerpts

    def serving_prompt(self, question: str) -> str:
        """What the hybrid column shows the model for a question: retrieval as served, nothing added."""
        chunks = self.source.search(question, self.options.passages)
        return self.user_turn(question, self.context(question, chunks)[0])


def build_with_passages(
    items: Sequence[Item],
    prompter: PassagePrompter,
    *,
    test: Sequence[QARecord] = (),
    fits: Callable[[Example], bool] | None = None,
) -> tuple[list[Example], PassageStats]:
    """With-passages examples for `items`; `test` records are checked never to appear among them.

    `fits` says whether an example is short enough to train (the training tokenizer's count against
    TRIPTYCH_FINETUNE_MAX_EXAMPLE_TOKENS): an example that is not loses distractor passages, the last
    first, until it fits; one that cannot fit even with its gold passage alone is skipped and counted.
    Deterministic for a given seed: which questions get distractors only, where a missed gold passage
    is put, and which chunks pad a short distractor list.
    """
    opts = prompter.options
    if not 0 <= opts.refusal_share < 1:
        raise ValueError(f"refusal share must be in [0, 1) (got {opts.refusal_share})")
    rng = random.Random(opts.seed)
    answerable = [i for i, it in enumerate(items) if it.answerable]
    refuse = set(rng.sample(answerable, round(opts.refusal_share * len(answerable))))
    everything = prompter.source.all_chunks()
    stats = PassageStats()
    examples: list[Example] = []
    for i, item in enumerate(items):
        retrieved = prompter.source.search(item.question, opts.passages)
        if not item.answerable or i in refuse:
            chunks = _distractors(item, retrieved, everything, opts.passages, rng)
            context, _ = prompter.context(item.question, chunks)
            if item.answerable and contains(context, item.answers):
                continue  # no distractor-only context exists for it (every chunk says it)
            kind = "distractor-only" if item.answerable else "unanswerable"
            make = partial(_refusal, prompter, item, kind=kind)
            example = _fitted(make, make(chunks), chunks, fits, stats)
            if example is None:
                stats.skipped_too_long.append(item.source_id)
                continue
            stats.unanswerable += kind == "unanswerable"
            stats.distractor_only += kind == "distractor-only"
            examples.append(example)
            continue
        chunks, found = _with_gold(item, retrieved, everything, opts.passages, rng)
        first = None if chunks is None else _gold(prompter, item, chunks)
        if chunks is None or first is None:  # no chunk holds the answer, or its sentence cannot be shown
            stats.skipped_not_in_documents.append(item.source_id)
            continue
        example = _fitted(partial(_gold, prompter, item), first, chunks, fits, stats)
        if example is None:
            stats.skipped_too_long.append(item.source_id)
            continue
        stats.with_gold += 1
        stats.gold_retrieved += found
        examples.append(example)
    examples = dedupe_examples(examples)
    assert_no_test_leak(examples, test)
    if not examples:
        raise TrainingSetError(
            f"none of the {len(items)} questions has its answer in the domain's indexed documents: "
            "ingest the documents the questions are about (`triptych ingest PATH --domain D`)"
            if not stats.skipped_too_long
            else f"none of the {len(items)} examples fits TRIPTYCH_FINETUNE_MAX_EXAMPLE_TOKENS even with one "
            "passage: raise it, or lower TRIPTYCH_CONTEXT_BUDGET_TOKENS"
        )
    return examples, stats


def _fitted(
    make: Callable[[list[Chunk]], Example | None],
    example: Example | None,
    chunks: list[Chunk],
    fits: Callable[[Example], bool] | None,
    stats: PassageStats,
) -> Example | None:
    """`example` (made by `make` from `chunks`), or `make` again with distractors dropped (the last first)
    until `fits` accepts it; None when nothing fits (or the answer's sentence is no longer shown)."""
    chunks, dropped = list(chunks), 0
    while example is not None and fits is not None and not fits(example):
        if len(chunks) <= 1:
            return None
        gold = example.gold - 1  # -1: a refusal, every passage is a distractor
        del chunks[max(j for j in range(len(chunks)) if j != gold)]
        dropped += 1
        example = make(chunks)
    stats.shortened += example is not None and dropped > 0
    return example


def _refusal(prompter: PassagePrompter, item: Item, chunks: Sequence[Chunk], *, kind: str) -> Example:
    context, _ = prompter.context(item.question, chunks)
    return _example(prompter, item, context, REFUSAL, kind, chunks, 0)


def _gold(prompter: PassagePrompter, item: Item, chunks: list[Chunk]) -> Example | None:
    made = _answer_from(prompter, item, chunks)
    if made is None:
        return None
    context, target, n = made
    return _example(prompter, item, context, target, "with-gold", chunks, n)


def _example(
    prompter: PassagePrompter, item: Item, context: str, target: str, kind: str, chunks: Sequence[Chunk], n: int
) -> Example:
    return Example(
        item.question,
        target,
        item.source_id,
        kind,
        prompt=prompter.user_turn(item.question, context),
        chunk_ids=tuple(c.chunk_id for c in chunks),
        gold=n,
    )


def _holds(chunk: Chunk, answers: Sequence[str]) -> bool:
    return contains(chunk.text, answers)


def _with_gold(
    item: Item, retrieved: list[Chunk], everything: list[Chunk], k: int, rng: random.Random
) -> tuple[list[Chunk] | None, bool]:
    """k chunks with a gold one among them; None: no chunk of the domain holds the answer.

    The retrieved chunks come first, in their order; a gold chunk retrieval missed takes the last one's
    place, and when retrieval returned fewer than k, random chunks of the domain that do not hold the
    answer are put in at random places (so every example has distractors).
    """
    found = any(_holds(c, item.answers) for c in retrieved[:k])
    chunks = list(retrieved[:k])
    if not found:
        holders = [c for c in everything if _holds(c, item.answers)]
        if not holders:
            return None, False
        asked = set(tokenize(item.question))
        gold = max(holders, key=lambda c: len(asked & set(tokenize(c.text))))  # the one closest to the question
        chunks = chunks[: max(0, k - 1)]
        chunks.insert(rng.randint(0, len(chunks)), gold)
    taken = {c.chunk_id for c in chunks}
    others = [c for c in everything if c.chunk_id not in taken and not _holds(c, item.answers)]
    rng.shuffle(others)
    for extra in others[: k - len(chunks)]:
        chunks.insert(rng.randint(0, len(chunks)), extra)
    return chunks, found


def _distractors(
    item: Item, retrieved: list[Chunk], everything: list[Chunk], k: int, rng: random.Random
) -> list[Chunk]:
    """k chunks of the domain that do not hold the answer: the retrieved ones first, then random others."""
    chunks = [c for c in retrieved if not item.answerable or not _holds(c, item.answers)][:k]
    taken = {c.chunk_id for c in chunks}
    others = [c for c in everything if c.chunk_id not in taken and not (item.answerable and _holds(c, item.answers))]
    rng.shuffle(others)
    return chunks + others[: k - len(chunks)]


def _answer_from(prompter: PassagePrompter, item: Item, chunks: list[Chunk]) -> tuple[str, str, int] | None:
    """(context, target, passage number) with the answer's sentence in the context; None when it cannot be shown.

    The sentences are chosen for the question as served; when that leaves the answer out, they are
    chosen for the question and its answer (so the gold passage's answering sentence is shown).
    """
    for query in (item.question, f"{item.question} {' '.join(item.answers)}"):
        context, excerpts = prompter.context(item.question, chunks, query)
        for excerpt in excerpts:
            answer = next((a for a in item.answers if contains(excerpt.text, [a])), None)
            if answer is not None:
                return context, f"{_as_quoted(answer, excerpt.text)} [{excerpt.n}].", excerpt.n
    return None


def _as_quoted(answer: str, text: str) -> str:
    """The answer in the passage's own casing where it occurs literally (else as given)."""
    at = text.lower().find(answer.lower())
    quoted = text[at : at + len(answer)] if at >= 0 else answer
    quoted = quoted.strip().rstrip(".")
    return quoted if normalize_answer(quoted) else answer


def domain_prompter(settings: object, domain: str, options: PassageOptions | None = None) -> PassagePrompter:
    """The prompter for a domain's own index, with the serving settings (top_k, context selection, rag_user.txt).

    Raises TrainingSetError naming the ingest command when the domain has no index.
    """
    from graphs.context import load_prompt
    from triptych.index import IndexStoreError
    from triptych.retrieval import retriever_for

    try:
        retriever = retriever_for(settings, domain)  # type: ignore[arg-type]
    except IndexStoreError as exc:
        raise TrainingSetError(f"with-passages training reads {domain}'s document index: {exc}") from None
    opts = options or PassageOptions(passages=settings.top_k, selection=settings.selection())  # type: ignore[attr-defined]
    user = load_prompt("rag_user", settings.prompts_dir)  # type: ignore[attr-defined]
    embed = CachedEmbed(retriever.embedder.embed_documents)
    return PassagePrompter(RetrieverPassages(retriever), user, opts, embed=embed)


def passages_training_set(
    closed_book: TrainingSet,
    items: Sequence[Item],
    prompter: PassagePrompter,
    system: str,
    *,
    count_tokens: Callable[[list[dict[str, str]]], int] | None = None,
    max_tokens: int = 512,
) -> TrainingSet:
    """The with-passages counterpart of a closed-book training set: same questions trained, same test kept aside.

    With `count_tokens` (the training tokenizer's), every example is fitted to `max_tokens`.
    """
    fits = None if count_tokens is None else (lambda e: count_tokens(e.messages(system)) <= max_tokens)
    examples, stats = build_with_passages(items, prompter, test=closed_book.test, fits=fits)
    opts = prompter.options
    generator = {
        **closed_book.generator,
        "mode": WITH_PASSAGES,
        "passages": opts.passages,
        "refusal_share": opts.refusal_share,
        **stats.to_dict(),
    }
    test_prompts = [(prompter.serving_prompt(r.question), r.gold_answers) for r in closed_book.test]
    return TrainingSet(
        system, examples, closed_book.trained, [], closed_book.test, generator, WITH_PASSAGES, test_prompts
    )


def answer_of(target: str) -> str:
    """A with-passages target without its citation: `45 desks [1].` -> `45 desks`."""
    import re

    return re.sub(r"\s*\[\d+\]\.?$", "", target).strip()
