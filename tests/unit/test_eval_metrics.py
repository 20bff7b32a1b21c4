"""The evaluation metrics against hand-checked cases."""

from __future__ import annotations

import pytest

from triptych.evaluate.metrics import (
    cited_numbers,
    contains,
    exact_match,
    hit_at,
    is_refusal,
    normalize_answer,
    numeric_match,
    parse_number,
    source_holds_answer,
    spans_numeric_match,
    token_f1,
    yes_no_match,
)
from triptych.evaluate.scoring import percentile, score_answer, summarize_pipeline
from triptych.qa import QARecord


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a  cat,  AN apple; the end. ", "cat apple end"),
        ("“Quoted” — text…", "quoted text"),
        ("CW 32 and 33", "cw 32 and 33"),
    ],
)
def test_normalisation_is_squad_style(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_match_takes_the_best_gold_answer() -> None:
    golds = ["30 calendar days", "30 days", "thirty days"]
    assert exact_match("Thirty days.", golds)
    assert exact_match("the 30 days", golds)
    assert not exact_match("within 30 days", golds)


def test_token_f1_by_hand() -> None:
    # prediction: 'you get 30 calendar days' (5 tokens), gold '30 calendar days' (3): 3 common
    # precision 3/5, recall 1 -> F1 = 2 * 0.6 / 1.6 = 0.75
    assert token_f1("You get 30 calendar days.", ["30 calendar days"]) == pytest.approx(0.75)
    # the alt answer '30 days' scores 2 * (2/5 * 1) / (2/5 + 1) = 0.5714; the max is kept
    assert token_f1("You get 30 calendar days.", ["30 days", "30 calendar days"]) == pytest.approx(0.75)
    assert token_f1("Tuesday", ["Monday"]) == 0.0
    assert token_f1("", ["Monday"]) == 0.0


def test_contains_needs_whole_words() -> None:
    assert contains("Employees get 5 days, carried over.", ["5 days"])
    assert not contains("Employees get 15 days.", ["5"])
    assert contains("It is the Lenovo ThinkPad P16s Gen 3.", ["ThinkPad P16s"])
    assert not contains("anything", [""])


def test_multi_span_needs_every_span() -> None:
    spans = ["$ 64,798", "$ 35,452"]
    assert contains("License revenue was $64,798 in 2019 and $35,452 in 2018.", ["$ 64,798; $ 35,452"], spans)
    assert not contains("License revenue was $64,798 in 2019.", ["$ 64,798; $ 35,452"], spans)
    assert spans_numeric_match("64798 and 35452 thousand", spans, "thousand")
    assert not spans_numeric_match("64798 only", spans, "thousand")


@pytest.mark.parametrize(
    ("prediction", "gold", "scale", "expected"),
    [
        ("The total is 1234.", "1,234", "", True),
        ("The total is 1,234.", "1234", "", True),
        ("Underlying EBITDA was $85.1 million in FY19.", "$85.1 million", "", True),
        ("It was 85,100,000 dollars.", "$85.1 million", "", True),
        ("It was 85.1.", "$85.1 million", "", True),  # scale word left out: the number as written
        ("Total assets decreased by 361.", "-361", "", True),  # sign ignored
        ("The change was (361) thousand", "-361", "thousand", True),
        ("The margin is 12.53%.", "12.5", "percent", True),  # within 0.5 %
        ("The margin is 13%.", "12.5", "percent", False),
        ("The revenue rose by 2019 standards", "1,234", "", False),
        ("EUR 2500", "EUR 2,500", "", True),
    ],
)
def test_numeric_match(prediction: str, gold: str, scale: str, expected: bool) -> None:
    assert numeric_match(prediction, [gold], scale) is expected


def test_numeric_match_only_for_numeric_golds() -> None:
    assert numeric_match("Delaware", ["Delaware"]) is None
    assert numeric_match("6 months", ["6 months"]) is None  # a number with a unit word: text metrics judge it
    assert parse_number("$ 1.2 million") == (1.2, 1.2e6)
    assert parse_number("12.5%") == (12.5, None)
    assert parse_number("calendar weeks 32 and 33") is None


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        ("I don't know.", True),
        ("I do not know", True),
        ("i dont know", True),
        ("Not in the documents.", True),
        ("The documents do not mention a Christmas bonus.", True),
        ("The context does not say.", True),
        ("There is no information about this in the passages.", True),
        ("I cannot answer that from the provided text.", True),
        ("30 days. The documents do not say more.", False),  # only the first sentence counts
        ("Tuesday", False),
        ("", False),  # no answer is not a refusal
    ],
)
def test_refusals(answer: str, refusal: bool) -> None:
    assert is_refusal(answer) is refusal


def test_citations_retrieval_and_sources() -> None:
    assert cited_numbers("Tuesday [2]. See also [1] and [2].") == [2, 1]
    assert hit_at(["leave.md", "remote.md"], ["remote"], 1) is False
    assert hit_at(["leave.md", "remote.md"], ["remote"], 2) is True
    assert hit_at(["leave.md"], [], 5) is None
    assert source_holds_answer("Anchor day is Tuesday for all teams.", ["Tuesday"])
    span = {"doc_id": "contract", "start": 100, "end": 120}
    assert source_holds_answer("no words match", ["Delaware"], span=span, doc_id="contract.txt", start=90, end=110)
    assert not source_holds_answer("no words match", ["Delaware"], span=span, doc_id="contract.txt", start=0, end=90)


def test_yes_no() -> None:
    assert yes_no_match("No, you can't stop it.", "No")
    assert not yes_no_match("Yes.", "No")
    assert yes_no_match("Yes", None) is None


def record(**kw) -> QARecord:
    base = {"id": "q1", "question": "Which weekday is the anchor day?", "answer": "Tuesday", "doc_ids": ("remote",)}
    return QARecord(**(base | kw))


def test_score_answer_for_rag() -> None:
    sources = [
        {"n": 1, "doc_id": "leave.md", "text": "Leave is 30 days.", "start": 0, "end": 17},
        {"n": 2, "doc_id": "remote.md", "text": "The anchor day is Tuesday.", "start": 0, "end": 26},
    ]
    scores = score_answer(
        record(), status="ok", answer="Tuesday [2].", sources=sources, retrieved_docs=["leave", "remote", "x"]
    )
    assert scores["correct"] and scores["em"] is True and scores["contains"] is True  # [2] is no part of it
    assert (scores["hit@1"], scores["hit@3"], scores["hit@5"]) == (False, True, True)
    assert scores["source_hit"] is True and scores["cited"] is True and scores["cited_holds_answer"] is True
    wrong_cite = score_answer(record(), status="ok", answer="Tuesday [1].", sources=sources, retrieved_docs=[])
    assert wrong_cite["cited_holds_answer"] is False and wrong_cite["hit@1"] is False


def test_a_cited_passage_number_is_not_the_answer() -> None:
    """'4 [6]' cites passage 6; it does not say 6 (a small model's wrong count must not score as right)."""
    six = record(answer="6", alt_answers=("six",))
    wrong = score_answer(six, status="ok", answer="4 [6]")
    assert not any(wrong[k] for k in ("em", "contains", "numeric", "correct")) and wrong["f1"] == 0.0
    right = score_answer(six, status="ok", answer="6 [1], [2; 3]")
    assert right["em"] and right["contains"] and right["numeric"] and right["correct"] and right["f1"] == 1.0
    assert score_answer(six, status="ok", answer="Table [2] lists 6 [1].")["contains"]


def test_score_answer_unanswerable_and_errors() -> None:
    unanswerable = record(answer="", doc_ids=(), answerable=False, answer_type="unanswerable")
    assert score_answer(unanswerable, status="ok", answer="I don't know.")["correct"] is True
    assert score_answer(unanswerable, status="ok", answer="EUR 500.")["correct"] is False
    failed = score_answer(record(), status="error", answer="")
    assert failed["correct"] is False and failed["f1"] == 0.0
    assert score_answer(record(), status="unavailable", answer="") == {"correct": None}


def test_summary_over_answers() -> None:
    def row(qid: str, correct: bool, f1: float, total: float, answerable: bool = True, refused: bool = False) -> dict:
        scores = {"correct": correct, "refused": refused}
        if answerable:
            scores |= {"em": correct, "f1": f1, "contains": correct, "numeric": None, "yes_no": None}
        return {"question_id": qid, "pipeline": "prompt", "status": "ok", "answerable": answerable,
                "answer_type": "extractive" if answerable else "unanswerable", "scores": scores,
                "ttft_s": total / 2, "total_s": total, "prompt_tokens": 100, "completion_tokens": 10,
                "cost_usd": 0.001}  # fmt: skip

    rows = [row("a", True, 1.0, 1.0), row("b", False, 0.5, 2.0), row("c", True, 0.0, 3.0, False, True)]
    m = summarize_pipeline(rows)
    assert m["correct"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["f1"] == 0.75 and m["contains"] == 0.5 and m["refusal_accuracy"] == 1.0
    assert m["false_refusal_rate"] == 0.0
    assert m["total_s"] == {"median": 2.0, "p95": 2.9, "mean": 2.0}
    assert m["own_total_s"] == m["total_s"] and m["queued_s"]["median"] == 0.0  # rows without a queue wait
    rows[1]["queued_s"] = 1.5  # waited for the shared local model behind another pipeline
    m = summarize_pipeline(rows)
    assert m["total_s"]["median"] == 2.0 and m["own_total_s"] == {"median": 1.0, "p95": 2.8, "mean": 1.5}
    assert m["own_ttft_s"]["median"] == 0.5 and m["queued_s"]["mean"] == 0.5
    assert m["tokens_total"] == 330 and m["cost_usd_per_answer"] == 0.001
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([], 0.5) is None
