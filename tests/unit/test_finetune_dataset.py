"""Training sets: built from the train split only, validated line by line with errors naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triptych.finetune.dataset import (
    IDK_ANSWER,
    Example,
    TrainingSetError,
    assert_no_test_leak,
    build_training_set,
    domain_records,
    finetuned_system_prompt,
    generate_from_documents,
    keyword_form,
    split_by_question,
    statement_question,
    validate_training_file,
)
from triptych.qa import QARecord

CORPORA = Path(__file__).resolve().parents[2] / "corpora"
SYSTEM = "Answer the question briefly."


def rec(i: int, split: str, answerable: bool = True, paraphrases: tuple[str, ...] = ()) -> QARecord:
    return QARecord(id=f"q{i}", question=f"What is fact number {i}?", answer=f"Fact {i}", split=split,
                    answerable=answerable, paraphrases=paraphrases)  # fmt: skip


def test_system_prompt_is_the_finetuned_pipelines_own() -> None:
    assert finetuned_system_prompt() == SYSTEM


def test_hr_handbook_training_set_never_contains_the_test_split() -> None:
    records = domain_records(CORPORA, "hr_handbook")
    ts = build_training_set(records, SYSTEM)
    test = [r for r in records if r.split == "test"]
    assert test and ts.test
    test_ids = {r.id for r in test}
    test_questions = {q for r in test for q in (r.question, *r.paraphrases)}
    assert not {e.source_id for e in ts.examples} & test_ids
    assert not {e.question for e in ts.examples} & test_questions
    assert {r.id for r in ts.trained} <= {r.id for r in records if r.split == "train"}
    rows = ts.rows()
    assert all([m["role"] for m in row["messages"]] == ["system", "user", "assistant"] for row in rows)
    assert all(row["messages"][0]["content"] == SYSTEM for row in rows)


def test_paraphrases_but_the_last_are_trained_and_the_last_is_held_out() -> None:
    ts = build_training_set([rec(1, "train", paraphrases=("Fact one is?", "Tell me fact one."))], SYSTEM)
    assert [(e.question, e.kind) for e in ts.examples] == [("What is fact number 1?", "question"),
                                                           ("Fact one is?", "paraphrase")]  # fmt: skip
    assert [p for _, p in ts.held_out_paraphrases] == ["Tell me fact one."]
    assert len(build_training_set([rec(1, "train", paraphrases=("a?", "b?"))], SYSTEM, paraphrases=False).examples) == 1


def test_keyword_phrasings_add_the_content_words_of_each_trained_phrasing_never_the_held_out_one() -> None:
    phrasings = ("What is the price of an installation?", "Who installs it, for how much?")
    record = QARecord(id="q1", question="How much does a certified installer charge for the Nimbus?", answer="EUR 89",
                      split="train", paraphrases=phrasings)  # fmt: skip
    ts = build_training_set([record], SYSTEM, keywords=True)
    assert [(e.question, e.kind) for e in ts.examples] == [
        ("How much does a certified installer charge for the Nimbus?", "question"),
        ("What is the price of an installation?", "paraphrase"),
        ("certified installer charge Nimbus?", "keywords"),
        ("price installation?", "keywords"),
    ]
    assert all(e.answer == "EUR 89" for e in ts.examples)
    assert [p for _, p in ts.held_out_paraphrases] == ["Who installs it, for how much?"]
    assert keyword_form("What is the press-and-hold time of the T3's reset?") == "press-and-hold time T3's reset?"
    assert keyword_form("What is it?") == ""  # nothing left that names a fact: no example
    assert [e.kind for e in build_training_set([record], SYSTEM).examples] == ["question", "paraphrase"]


def test_unanswerable_train_questions_teach_i_dont_know() -> None:
    ts = build_training_set([rec(1, "train", answerable=False), rec(2, "test", answerable=False)], SYSTEM)
    assert [(e.answer, e.kind) for e in ts.examples] == [(IDK_ANSWER, "unanswerable")]
    assert build_training_set([rec(1, "train", answerable=False)], SYSTEM, unanswerable=False).examples == []


def test_a_test_question_in_the_training_set_is_refused() -> None:
    test = [rec(7, "test")]
    with pytest.raises(TrainingSetError, match="test-split question"):
        assert_no_test_leak([Example("what is FACT number 7", "x", "other")], test)
    with pytest.raises(TrainingSetError, match="q7"):
        assert_no_test_leak([Example("unrelated?", "x", "q7")], test)


def test_records_without_a_split_are_refused() -> None:
    with pytest.raises(TrainingSetError, match="without a train/test split: q1"):
        build_training_set([QARecord(id="q1", question="Q?", answer="A")], SYSTEM)


def test_split_by_question_is_deterministic_70_30() -> None:
    records = [QARecord(id=f"q{i}", question=f"Question {i}?", answer="A") for i in range(20)]
    a, b = split_by_question(records), split_by_question(list(reversed(records)))
    assert sum(r.split == "train" for r in a) == 14
    assert {r.id for r in a if r.split == "test"} == {r.id for r in b if r.split == "test"}


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def conv(q: str, a: str, system: bool = True) -> dict:
    msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return {"messages": ([{"role": "system", "content": SYSTEM}] if system else []) + msgs}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", r"train\.jsonl:2: not JSON"),
        ({"prompt": "x"}, r"train\.jsonl:2: expected \{\"messages\""),
        (conv("Q2?", "  "), r"train\.jsonl:2: empty answer"),
        (conv("What is fact one?", "again"), r"train\.jsonl:2: duplicate of line 1"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "bot", "content": "A"}]},
         r"train\.jsonl:2: message 1 has role 'bot'"),
        ({"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q?"}]},
         r"train\.jsonl:2: roles \['assistant', 'user'\]"),
        (conv("Q2?", "x" * 5000), r"train\.jsonl:2: message 2 is 5000 characters"),
    ],
)  # fmt: skip
def test_validation_names_file_and_line(tmp_path: Path, bad: object, message: str) -> None:
    path = write_lines(tmp_path / "train.jsonl", [conv("What is fact one?", "One"), bad])
    with pytest.raises(TrainingSetError, match=message):
        validate_training_file(path)


def test_validation_rejects_oversize_examples_by_token_count(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "train.jsonl", [conv("Short?", "Yes"), conv("Long " * 50 + "?", "No")])
    words = lambda messages: sum(len(m["content"].split()) for m in messages)  # noqa: E731
    with pytest.raises(TrainingSetError, match=r"train\.jsonl:2: 56 tokens, over the limit of 20"):
        validate_training_file(path, count_tokens=words, max_tokens=20)


def test_validation_accepts_a_written_training_set(tmp_path: Path) -> None:
    ts = build_training_set([rec(1, "train"), rec(2, "train"), rec(3, "test")], SYSTEM)
    conversations = validate_training_file(ts.write(tmp_path / "t.jsonl"))
    assert [c[1]["content"] for c in conversations] == ["What is fact number 1?", "What is fact number 2?"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TrainingSetError, match="no training examples"):
        validate_training_file(empty)


def test_statement_questions_are_deterministic_and_answered_by_the_statement() -> None:
    assert statement_question("The carry-over deadline is 31 March.", "Leave Policy") == (
        "According to the Leave Policy, what is the carry-over deadline?"
    )
    assert statement_question("Employees must book travel through the portal.", "Travel Policy") == (
        "According to the Travel Policy, what must employees do?"
    )
    text = "# Leave\n\nThe carry-over deadline is 31 March of the following year. Short one.\n\n- a list item here"
    examples = generate_from_documents([("leave.md", "Leave Policy", text)])
    assert [(e.answer, e.kind) for e in examples] == [("The carry-over deadline is 31 March of the following year.",
                                                       "generated")]  # fmt: skip
    assert examples == generate_from_documents([("leave.md", "Leave Policy", text)])


def test_documents_without_qa_get_a_generated_training_set() -> None:
    from triptych.finetune.dataset import generated_training_set

    ts = generated_training_set(CORPORA / "hr_handbook" / "docs", SYSTEM, limit=30)
    assert len(ts.examples) == 30 and not ts.test
    assert all(e.question.endswith("?") and e.answer.endswith(".") for e in ts.examples)
