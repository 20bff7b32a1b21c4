"""Seen versus unseen: a fine-tuned pipeline's scores split by what its adapter run was trained on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from graphs.compare import Comparison
from graphs.context import PipelineContext
from graphs.registry import PipelineSpec
from tests.fakes import FakeRetriever
from tests.unit.test_eval_runner import CHUNKS, ByQuestion
from triptych.evaluate.runner import Evaluation
from triptych.evaluate.training_overlap import TrainingOverlap, question_key, seen_in_training
from triptych.qa import QARecord, parse_record
from triptych.settings import Settings

QA = [
    {"id": "t1", "question": "Which weekday is the anchor day?", "answer": "Tuesday", "doc_ids": ["remote_work"]},
    {"id": "t2", "question": "How much is the on-call allowance?", "answer": "EUR 1,800", "doc_ids": ["on_call"],
     "paraphrases": ["What is the allowance for being on call?"]},
    {"id": "t3", "question": "Who approves travel?", "answer": "the team lead", "doc_ids": ["travel"]},
    {"id": "t4", "question": "When is the office closed?", "answer": "on Sundays", "doc_ids": ["office"]},
]  # fmt: skip
# The adapter run trained on t1 (other case and punctuation) and on a paraphrase of t2 (with an article)
TRAINED = ["which WEEKDAY is the anchor-day", "What is THE allowance for being on call", "How do I book a desk?"]
REPLIES = {
    "finetuned": {"t1": "Tuesday.", "t2": "EUR 900.", "t3": "The team lead.", "t4": "On Mondays."},
    "rag": {"t1": "Tuesday [1].", "t2": "EUR 1,800.", "t3": "Not in the documents.", "t4": "On Sundays."},
}


class Scripted(ByQuestion):
    """ByQuestion over this module's questions."""

    async def _astream(self, messages, *args, **kw):  # type: ignore[no-untyped-def,override]
        question = str(messages[-1].content)
        self.reply = self.replies[next(q["id"] for q in QA if q["question"] in question)]
        async for chunk in super(ByQuestion, self)._astream(messages, *args, **kw):
            yield chunk


def write_adapter_run(settings: Settings, domain: str, run_id: str, questions: list[str]) -> None:
    """A finished local run as triptych.finetune.runs leaves it: training.jsonl, adapter.gguf, active.json."""
    folder = settings.runs_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"messages": [{"role": "system", "content": "Answer."}, {"role": "user", "content": q},
                          {"role": "assistant", "content": "x"}]} for q in questions]  # fmt: skip
    (folder / "training.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "adapter.gguf").write_bytes(b"GGUF")
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "domain": domain, "status": "done"}))
    (settings.runs_dir / "active.json").write_text(json.dumps({domain: run_id}))


def evaluation(tmp_path: Path) -> Evaluation:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    retriever = FakeRetriever(CHUNKS)

    def prepare(spec: PipelineSpec, domain: str | None, gate: asyncio.Semaphore) -> PipelineContext:
        return PipelineContext(chat=Scripted(replies=REPLIES[spec.id]), model=f"m-{spec.id}", retriever=retriever)

    return Evaluation(Comparison(settings, prepare=prepare, retriever_for=lambda domain: retriever))


def records() -> list[QARecord]:
    return [parse_record(q, f"qa:{i}") for i, q in enumerate(QA, 1)]


def run(tmp_path: Path) -> Any:
    ev = evaluation(tmp_path)
    write_adapter_run(ev.settings, "hr", "20260101-000000-hr", TRAINED)
    return ev.run("hr", records(), ["finetuned", "rag"])


def test_a_question_or_its_paraphrase_in_the_training_set_counts_as_seen(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    write_adapter_run(settings, "hr", "r1", TRAINED)
    overlap = TrainingOverlap(settings, "hr", ["prompt", "rag", "finetuned", "finetuned_rag"])
    assert overlap.runs == {"prompt": None, "rag": None, "finetuned": "r1", "finetuned_rag": "r1"}
    t1, t2, t3, _ = records()
    assert [overlap.seen("finetuned", r) for r in (t1, t2, t3)] == [True, True, False]
    assert overlap.seen("finetuned_rag", t2) is True and overlap.seen("rag", t1) is None
    assert question_key("Which weekday is THE anchor-day?") == question_key("which weekday is anchor day")
    assert seen_in_training(t1, None) is None  # a run without training.jsonl: not known


def test_no_active_adapter_means_nothing_is_known_about_training(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    overlap = TrainingOverlap(settings, "hr", ["finetuned"])
    assert overlap.runs == {"finetuned": None} and overlap.seen("finetuned", records()[0]) is None


def test_each_answer_records_whether_it_was_seen_and_the_summary_splits_on_it(tmp_path: Path) -> None:
    outcome = run(tmp_path)
    rows = {(a["question_id"], a["pipeline"]): a for a in outcome.run.answers()}
    assert [rows[(q, "finetuned")]["seen_in_training"] for q in ("t1", "t2", "t3", "t4")] == [True, True, False, False]
    assert {rows[(q, "rag")]["seen_in_training"] for q in ("t1", "t2", "t3", "t4")} == {None}
    assert rows[("t1", "finetuned")]["adapter_run"] == "20260101-000000-hr"
    assert outcome.run.manifest()["adapter_runs"] == {"finetuned": "20260101-000000-hr"}

    ft = outcome.summary["metrics"]["finetuned"]
    # fine-tuned: right on t1 (seen) and t3 (unseen), wrong on t2 (seen) and t4 (unseen)
    assert ft["correct"] == 0.5
    split = ft["by_training"]
    assert split["adapter_runs"] == ["20260101-000000-hr"] and split["not_recorded"] == 0
    assert (split["unseen"]["scored"], split["unseen"]["correct"]) == (2, 0.5)
    assert (split["seen"]["scored"], split["seen"]["correct"]) == (2, 0.5)
    assert "by_training" not in outcome.summary["metrics"]["rag"]

    # the pair finetuned / rag is compared on the two questions the adapter did not see
    (pair,) = outcome.summary["comparisons"]
    assert (pair["a"], pair["b"], pair["questions"], pair["n"], pair["left_out_seen"]) == (
        "finetuned", "rag", "unseen", 2, 2,
    )  # fmt: skip
    assert (pair["accuracy_a"], pair["accuracy_b"]) == (0.5, 0.5)


def test_an_adapter_without_a_recorded_training_set_is_headlined_by_all_its_answers(tmp_path: Path) -> None:
    from triptych.evaluate.headline import counts_text, headline

    ev = evaluation(tmp_path)
    write_adapter_run(ev.settings, "hr", "r1", TRAINED)
    (ev.settings.runs_dir / "r1" / "training.jsonl").unlink()
    outcome = ev.run("hr", records(), ["finetuned"])
    assert {a["seen_in_training"] for a in outcome.run.answers()} == {None}
    ft = outcome.summary["metrics"]["finetuned"]
    assert ft["by_training"]["not_recorded"] == 4 and ft["by_training"]["unseen"]["scored"] == 0
    h = headline("finetuned", ft)
    assert (h.basis, h.metrics["correct"], h.split_missing) == ("all", 0.5, True)
    assert counts_text(h) == "n=4 (seen / unseen not recorded)"
    assert {a["miss_cause"] for a in outcome.run.answers()} == {None, "wrong"}  # not "unseen fact": unknown


def test_the_compare_column_says_whether_its_adapter_trained_on_the_question(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    write_adapter_run(settings, "hr", "run-1", TRAINED)
    chat = Scripted(replies=REPLIES["finetuned"])
    runner = Comparison(settings, prepare=lambda spec, domain, gate: PipelineContext(chat=chat, model="ft"))
    trained = runner.run("Which weekday is the anchor day?", "hr", ["finetuned", "prompt"])
    assert trained["finetuned"].seen_in_training is True
    assert trained["prompt"].seen_in_training is None  # no adapter, nothing to say
    new = runner.run("When is the office closed?", "hr", ["finetuned"])["finetuned"]
    assert new.seen_in_training is False
    assert new.to_dict()["seen_in_training"] is False  # kept in the history


def test_the_hybrids_with_passages_run_counts_the_questions_inside_its_passage_prompts(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    write_adapter_run(settings, "hr", "closed", TRAINED)
    turns = [f"Question: {q}\n\nPassages:\n[1] (Office)\nThe office closes on Sundays.\n\nQuestion: {q}\nAnswer."
             for q in ("Who approves travel?", "What colour is the logo?")]  # fmt: skip
    write_adapter_run(settings, "hr", "reads", turns)
    (settings.runs_dir / "active.json").write_text(json.dumps({"hr": "closed"}))
    (settings.runs_dir / "reads" / "run.json").write_text(json.dumps({"run_id": "reads", "domain": "hr",
                                                                       "mode": "with-passages"}))  # fmt: skip
    (settings.runs_dir / "active_with_passages.json").write_text(json.dumps({"hr": "reads"}))
    overlap = TrainingOverlap(settings, "hr", ["finetuned", "finetuned_rag"])
    assert overlap.runs == {"finetuned": "closed", "finetuned_rag": "reads"}
    t1, _, t3, t4 = records()
    assert [overlap.seen("finetuned_rag", r) for r in (t1, t3, t4)] == [False, True, False]
    assert overlap.seen("finetuned", t3) is False and overlap.seen("finetuned", t1) is True
