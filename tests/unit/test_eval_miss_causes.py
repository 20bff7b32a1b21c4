"""Why each answer missed: one cause per wrong answer, counted per pipeline in the run's summary."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_eval_runner import QA, ByQuestion, make_evaluation
from triptych.evaluate.scoring import miss_cause
from triptych.qa import load_qa, parse_record

RECORD = parse_record({"id": "x", "question": "Which weekday is the anchor day?", "answer": "Tuesday"}, "qa:1")
HOLDS = [{"n": 1, "doc_id": "remote_work.md", "text": "The anchor day is Tuesday.", "start": 0, "end": 26}]
LACKS = [{"n": 1, "doc_id": "benefits.md", "text": "Benefits are paid monthly.", "start": 0, "end": 26}]


def cause(**kw) -> str | None:  # type: ignore[no-untyped-def]
    base = {"uses_retrieval": False, "uses_adapter": False, "status": "ok", "scores": {"correct": False}}
    return miss_cause(RECORD, **(base | kw))


def test_retrieval_answers_miss_by_retrieval_by_reading_or_by_refusing() -> None:
    assert cause(uses_retrieval=True, sources=LACKS) == "retrieval miss"
    assert cause(uses_retrieval=True, sources=[]) == "retrieval miss"
    assert cause(uses_retrieval=True, sources=LACKS + HOLDS) == "read miss"
    refused = {"correct": False, "refused": True}
    assert cause(uses_retrieval=True, sources=HOLDS, scores=refused) == "refused"
    # fine-tuned + RAG is a retrieval pipeline first
    assert cause(uses_retrieval=True, uses_adapter=True, sources=HOLDS, seen_in_training=False) == "read miss"


def test_fine_tuned_answers_miss_as_unseen_facts_or_seen_but_wrong() -> None:
    assert cause(uses_adapter=True, seen_in_training=False) == "unseen fact"
    assert cause(uses_adapter=True, seen_in_training=True) == "seen but wrong"
    assert cause(uses_adapter=True, seen_in_training=None) == "wrong"  # its training set is not known


def test_prompt_answers_are_wrong_or_refused_and_right_answers_have_no_cause() -> None:
    assert cause() == "wrong"
    assert cause(scores={"correct": False, "refused": True}) == "refused"
    assert cause(scores={"correct": True}) is None
    assert cause(status="unavailable", scores={"correct": None}) is None
    assert cause(status="error", uses_retrieval=True) == "error"
    unanswerable = parse_record({"id": "u", "question": "Bonus?", "answer": "", "answerable": False}, "qa:2")
    assert miss_cause(unanswerable, uses_retrieval=True, uses_adapter=False, status="ok",
                      scores={"correct": False, "refused": False}) == "should have refused"  # fmt: skip


def test_a_run_stores_each_cause_and_counts_them_per_pipeline(tmp_path: Path) -> None:
    qa_file = tmp_path / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(q) + "\n" for q in QA), encoding="utf-8")
    replies = {
        "prompt": {"q1": "Monday.", "q2": "I don't know.", "q3": "I don't know."},
        # q1: its chunk says Tuesday (read miss); q2: no chunk about on-call (retrieval miss); q3 should decline
        "rag": {"q1": "Monday [1].", "q2": "EUR 900.", "q3": "EUR 500 [2]."},
    }
    chats = {p: ByQuestion(replies=r) for p, r in replies.items()}
    outcome = make_evaluation(tmp_path, chats).run("hr", load_qa(qa_file, "test"), ["prompt", "rag", "finetuned"])
    rows = {(a["question_id"], a["pipeline"]): a["miss_cause"] for a in outcome.run.answers()}
    assert [rows[(q, "rag")] for q in ("q1", "q2", "q3")] == ["read miss", "retrieval miss", "should have refused"]
    assert [rows[(q, "prompt")] for q in ("q1", "q2", "q3")] == ["wrong", "refused", None]
    assert rows[("q1", "finetuned")] is None  # unavailable: not scored
    metrics = outcome.summary["metrics"]
    assert metrics["rag"]["miss_causes"] == {"retrieval miss": 1, "read miss": 1, "should have refused": 1}
    assert metrics["prompt"]["miss_causes"] == {"refused": 1, "wrong": 1}
    assert metrics["finetuned"]["miss_causes"] == {}
