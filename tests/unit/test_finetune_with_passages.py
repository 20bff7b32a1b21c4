"""With-passages training data: the question among numbered passages of the domain's own index, RAFT-style.

The index here is crafted: one chunk per fact of a made-up company, searched with real BM25
(triptych.retrieval.LexicalIndex), plus chunks of another domain that must never appear.
"""

from __future__ import annotations

import re

import pytest

from tests.fakes import make_chunk
from triptych.documents.chunking import Chunk
from triptych.finetune.dataset import TrainingSetError, build_training_set
from triptych.finetune.with_passages import (
    REFUSAL,
    Item,
    PassageOptions,
    PassagePrompter,
    answer_of,
    build_with_passages,
    items_from_examples,
    items_from_records,
    passages_training_set,
)
from triptych.passages import SelectionConfig
from triptych.qa import QARecord
from triptych.retrieval import LexicalIndex

USER = "Question: {question}\n\nPassages:\n{context}\n\nQuestion: {question}\nAnswer with the words of the passage."
SYSTEM = "You answer a question from numbered passages."
FACTS = [
    ("How many desks does the Lisbon office have?", "45 desks", "The Lisbon office has 45 desks and a roof terrace."),
    ("Who leads the robotics lab?", "Dr. Ana Pires", "The robotics lab is led by Dr. Ana Pires since 2020."),
    ("What colour is the company logo?", "teal", "The company logo is teal with a white border."),
    ("How many days of leave accrue per month?", "2.25 days", "Full-time staff accrue 2.25 days of leave per month."),
    ("Which city hosts the annual summit?", "Porto", "The annual summit takes place in Porto every June."),
    ("What is the expense approval limit?", "500 euros", "Managers approve expenses up to 500 euros alone."),
    ("When was the company founded?", "1998", "The company was founded in 1998 by two engineers."),
    ("What is the name of the staff newsletter?", "The Gazette", "The staff newsletter is called The Gazette."),
    ("How long is the probation period?", "six months", "New employees serve a probation period of six months."),
    ("Which laptop model do engineers get?", "ThinkPad X1", "Engineers receive a ThinkPad X1 on their first day."),
]
OTHER_DOMAIN = [make_chunk(f"other-{i}", "recipes", "recipes.md", "Recipes", f"Bake the bread for {20 + i} minutes.",
                           0, 30, 1.0) for i in range(3)]  # fmt: skip


class CraftedIndex:
    """A domain index of one chunk per fact: BM25 search over its chunks, every chunk for distractors."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self.lexical = LexicalIndex(chunks)

    def search(self, query: str, k: int | None = None) -> list[Chunk]:
        return [c for c, _ in self.lexical.search(query, k or 4)]

    def all_chunks(self) -> list[Chunk]:
        return list(self.chunks)


def crafted() -> CraftedIndex:
    chunks = [make_chunk(f"acme-{i}", f"doc{i}", f"doc{i}.md", f"Acme guide {i}", text, 0, len(text), 1.0)
              for i, (_, _, text) in enumerate(FACTS)]  # fmt: skip
    return CraftedIndex(chunks)


def records(test_every: int = 4) -> list[QARecord]:
    out = [QARecord(id=f"f{i}", question=q, answer=a, split="test" if i % test_every == 3 else "train")
           for i, (q, a, _) in enumerate(FACTS)]  # fmt: skip
    out.append(QARecord(id="u1", question="What is the CEO's shoe size?", answer="unknown", split="train",
                        answerable=False))  # fmt: skip
    return out


def prompter(index: CraftedIndex | None = None, **options: object) -> PassagePrompter:
    opts = PassageOptions(**{"passages": 3, "refusal_share": 0.25, "selection": SelectionConfig(), **options})
    return PassagePrompter(index or crafted(), USER, opts)


def test_most_examples_hold_their_gold_passage_quoted_and_cited_in_the_rag_format() -> None:
    recs = records()
    examples, stats = build_with_passages(items_from_records(recs), prompter())
    gold = [e for e in examples if e.kind == "with-gold"]
    assert len(gold) > len(examples) / 2
    assert stats.with_gold == len(gold) and not stats.skipped_not_in_documents
    for e in gold:
        fact = next(f for f in FACTS if f[0] == e.question)
        turn = e.messages(SYSTEM)[1]["content"]
        assert turn.startswith(f"Question: {e.question}\n\nPassages:\n[") and "[1] (Acme guide" in turn
        block = re.search(rf"\[{e.gold}\] \([^)]*\)\n([^\n]*)", turn)
        assert block and fact[2] in block.group(1), "the cited passage holds the answer's sentence"
        assert e.answer == f"{fact[1]} [{e.gold}]." and answer_of(e.answer) == fact[1]
        assert len(e.chunk_ids) == 3 and f"acme-{FACTS.index(fact)}" in e.chunk_ids


def test_distractors_come_from_the_same_domains_index_and_never_hold_the_answer() -> None:
    index = crafted()
    examples, _ = build_with_passages(items_from_records(records()), prompter(index))
    own = {c.chunk_id for c in index.chunks}
    assert all(set(e.chunk_ids) <= own for e in examples)
    assert not any("recipes" in e.prompt or "Bake" in e.prompt for e in examples)
    for e in examples:
        assert len(set(e.chunk_ids)) == len(e.chunk_ids) == 3
        if e.kind == "distractor-only":
            fact = next(f for f in FACTS if f[0] == e.question)
            assert e.answer == REFUSAL and fact[2] not in e.prompt and f"acme-{FACTS.index(fact)}" not in e.chunk_ids


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5])
def test_the_refusal_share_is_honoured(share: float) -> None:
    recs = records()
    items = items_from_records(recs)
    answerable = sum(i.answerable for i in items)
    examples, stats = build_with_passages(items, prompter(refusal_share=share))
    assert stats.distractor_only == round(share * answerable)
    assert sum(e.kind == "distractor-only" for e in examples) == round(share * answerable)
    unanswerable = [e for e in examples if e.kind == "unanswerable"]
    assert [(e.source_id, e.answer) for e in unanswerable] == [("u1", REFUSAL)]  # always the refusal
    assert build_with_passages(items, prompter(refusal_share=share, seed=0))[0] == examples  # deterministic


def test_no_test_split_question_is_ever_trained() -> None:
    recs = records()
    test = [r for r in recs if r.split == "test"]
    closed = build_training_set(recs, "Answer the question briefly.")
    ts = passages_training_set(closed, items_from_records(recs), prompter(), SYSTEM)
    trained_questions = {e.question for e in ts.examples}
    assert test and not trained_questions & {r.question for r in test}
    assert not {e.source_id for e in ts.examples} & {r.id for r in test}
    assert not any(r.question in e.prompt for e in ts.examples for r in test)
    assert ts.mode == "with-passages" and ts.test == [r for r in test if r.answerable]
    assert [q for q, _ in ts.test_prompts] and all(p.startswith("Question: ") for p, _ in ts.test_prompts)
    with pytest.raises(TrainingSetError, match="test-split question"):
        build_with_passages([Item(test[0].question, (test[0].answer,), "sneaky")], prompter(), test=test)


def test_a_gold_passage_that_retrieval_misses_is_put_among_the_retrieved_ones() -> None:
    index = crafted()
    item = Item("Tell me about the Gazette publication?", ("The Gazette",), "g1")  # BM25 finds it...
    far = Item("Which model of computer is handed out?", ("ThinkPad X1",), "g2")  # ...but not this one
    examples, stats = build_with_passages([item, far], prompter(index, refusal_share=0.0))
    assert stats.with_gold == 2 and stats.gold_retrieved == 1
    assert "acme-9" in examples[1].chunk_ids and examples[1].answer.startswith("ThinkPad X1 [")


def test_answers_not_in_the_documents_are_skipped_and_none_at_all_is_a_clear_error() -> None:
    items = [Item("What is the wifi password?", ("hunter2",), "w1")]
    with pytest.raises(TrainingSetError, match="ingest the documents"):
        build_with_passages(items, prompter(refusal_share=0.0))
    ok, stats = build_with_passages([*items, *items_from_records(records())[:2]], prompter(refusal_share=0.0))
    assert stats.skipped_not_in_documents == ["w1"] and len(ok) == 2


def test_generated_questions_from_documents_work_too() -> None:
    from triptych.finetune.dataset import generate_from_documents

    text = " ".join(f[2] for f in FACTS)
    generated = generate_from_documents([("guide.md", "Acme guide", text)])
    assert generated
    examples, stats = build_with_passages(items_from_examples(generated), prompter(refusal_share=0.0))
    assert stats.with_gold == len(examples) >= len(generated) // 2
    assert all(re.search(r" \[\d\]\.$", e.answer) for e in examples)


def test_examples_over_the_token_limit_lose_distractors_but_keep_their_gold_passage() -> None:
    items = items_from_records(records())
    full, _ = build_with_passages(items, prompter())
    limit = min(len(e.prompt) for e in full) - 1  # every full example is over it; one passage alone is under
    fitted, stats = build_with_passages(items, prompter(), fits=lambda e: len(e.prompt) <= limit)
    assert stats.shortened == len(fitted) and not stats.skipped_too_long
    assert all(len(e.prompt) <= limit and len(e.chunk_ids) < 3 for e in fitted)
    for e in (e for e in fitted if e.kind == "with-gold"):
        fact = next(f for f in FACTS if f[0] == e.question)
        assert f"acme-{FACTS.index(fact)}" in e.chunk_ids and e.answer == f"{fact[1]} [{e.gold}]."
        assert re.search(rf"\[{e.gold}\] \([^)]*\)\n{re.escape(fact[2])}", e.prompt)
    assert {e.question for e in fitted} == {e.question for e in full}


def test_a_limit_nothing_fits_names_the_settings_to_change() -> None:
    with pytest.raises(TrainingSetError, match="TRIPTYCH_FINETUNE_MAX_EXAMPLE_TOKENS"):
        build_with_passages(items_from_records(records()), prompter(), fits=lambda e: False)
