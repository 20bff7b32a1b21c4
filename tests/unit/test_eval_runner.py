"""An evaluation run with scripted pipelines: expected summary, resuming, failures, stored files, reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from graphs.compare import Comparison
from graphs.context import PipelineContext
from graphs.registry import PipelineSpec
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych.evaluate import list_runs, load_run
from triptych.evaluate.report import compare_runs, render_html
from triptych.evaluate.runner import Evaluation
from triptych.evaluate.store import ANSWERS, MANIFEST, RunDir, evals_dir
from triptych.qa import load_qa
from triptych.settings import Settings

QA = [
    {"id": "q1", "question": "Which weekday is the anchor day?", "answer": "Tuesday", "alt_answers": ["Tuesdays"],
     "doc_ids": ["remote_work"], "answer_type": "extractive", "split": "test"},
    {"id": "q2", "question": "How much is the on-call allowance?", "answer": "EUR 1,800", "doc_ids": ["on_call"],
     "answer_type": "extractive", "split": "test"},
    {"id": "q3", "question": "How much is the Christmas bonus?", "answer": "", "doc_ids": [],
     "answer_type": "unanswerable", "answerable": False, "split": "test"},
    {"id": "q4", "question": "What is the <b>badge</b> colour?", "answer": "green", "doc_ids": ["security"],
     "answer_type": "extractive", "split": "train"},
]  # fmt: skip

# What each pipeline answers to each question (by question id).
REPLIES = {
    "prompt": {"q1": "Monday.", "q2": "It is 1800 euros.", "q3": "I don't know."},
    "rag": {"q1": "Tuesday [1].", "q2": "Not in the documents.", "q3": "EUR 500 [2]."},
}
CHUNKS = [
    make_chunk("c1", "remote_work.md", "remote_work.md", "Remote work", "The anchor day is Tuesday.", 0, 26, 0.9),
    make_chunk("c2", "benefits.md", "benefits.md", "Benefits", "Benefits <script>alert(1)</script>", 0, 30, 0.8),
]


class ByQuestion(ScriptedChat):
    """Answers from a table keyed by question id (named in the last message); counts questions asked."""

    replies: dict[str, str] = {}
    asked: list[str] = []

    async def _astream(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> AsyncIterator[ChatGenerationChunk]:
        question = str(messages[-1].content)
        qid = next(q["id"] for q in QA if q["question"] in question)
        self.asked.append(qid)
        self.reply = self.replies[qid]
        async for chunk in super()._astream(messages, *args, **kw):
            yield chunk


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QA), encoding="utf-8")
    return path


def make_evaluation(tmp_path: Path, chats: dict[str, ScriptedChat], **kw: Any) -> Evaluation:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    retriever = FakeRetriever(CHUNKS)

    def prepare(spec: PipelineSpec, domain: str | None, gate: asyncio.Semaphore) -> PipelineContext:
        if spec.id == "finetuned":
            return PipelineContext(chat=None, model="", unavailable="not fine-tuned yet")
        return PipelineContext(chat=chats[spec.id], model=f"m-{spec.id}", retriever=retriever,
                               price_in_per_1k=1.0, price_out_per_1k=2.0)  # fmt: skip

    comparison = Comparison(settings, prepare=prepare, retriever_for=lambda domain: retriever)
    return Evaluation(comparison, **kw)


def chats() -> dict[str, ByQuestion]:
    return {p: ByQuestion(replies=r, usage=(100, 10)) for p, r in REPLIES.items()}


def test_a_run_scores_every_answer_and_summarises(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")
    evaluation = make_evaluation(tmp_path, chats())
    progress = []
    outcome = evaluation.run("hr", records, ["prompt", "rag", "finetuned"], qa_file=str(qa_file), split="test",
                             on_progress=progress.append)  # fmt: skip
    s = outcome.summary
    assert [p.done for p in progress] == [1, 2, 3] and outcome.asked == 3 and not outcome.resumed
    assert s["status"] == "complete" and s["questions"] == 3 and s["answered"] == 9
    prompt, rag, ft = (s["metrics"][p] for p in ("prompt", "rag", "finetuned"))
    # prompt: q1 wrong, q2 right by number (1800 vs EUR 1,800), q3 refused correctly
    assert prompt["correct"] == pytest.approx(2 / 3, abs=1e-4)
    assert prompt["contains"] == 0.0 and prompt["numeric"] == 1.0 and prompt["refusal_accuracy"] == 1.0
    # rag: q1 right and cites the source that holds it; q2 refused although answerable; q3 answered wrongly
    assert rag["correct"] == pytest.approx(1 / 3, abs=1e-4)
    # "Tuesday [1]." is exactly the gold answer once its citation mark is set aside
    assert rag["exact_match"] == 0.5 and rag["contains"] == 0.5 and rag["false_refusal_rate"] == 0.5
    assert rag["refusal_accuracy"] == 0.0
    assert rag["hit@1"] == 0.5  # q1's document is first; q2's is not retrieved (q3 has no gold document)
    assert rag["cited_holds_answer"] == 1.0 and rag["citation_rate"] == 0.5
    assert prompt["hit@1"] is None  # no retrieval in the prompt pipeline
    assert ft["unavailable"] == 3 and ft["correct"] is None
    assert prompt["tokens_total"] == 330 and prompt["cost_usd_per_answer"] == pytest.approx(0.12)
    assert prompt["total_s"]["median"] is not None

    run = outcome.run
    manifest = json.loads((run.path / MANIFEST).read_text())
    assert manifest["question_ids"] == ["q1", "q2", "q3"] and manifest["status"] == "complete"
    assert manifest["settings"]["data_dir"] == str(tmp_path / "data")
    rows = [json.loads(line) for line in (run.path / ANSWERS).read_text().splitlines()]
    assert len(rows) == 9
    q1_rag = next(r for r in rows if r["question_id"] == "q1" and r["pipeline"] == "rag")
    assert q1_rag["answer"] == "Tuesday [1]." and q1_rag["sources"][0]["doc_id"] == "remote_work.md"
    assert q1_rag["retrieved_doc_ids"] == ["remote_work", "benefits"]
    assert q1_rag["scores"]["correct"] is True and q1_rag["judge"] is None

    runs = list_runs(evaluation.settings)
    assert [r.run_id for r in runs] == [run.run_id] and runs[0].metrics == s["metrics"]
    assert load_run(evaluation.settings, run.run_id).summary == s


def test_a_resumed_run_does_not_ask_finished_questions_again(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")
    first = make_evaluation(tmp_path, chats()).run("hr", records, ["prompt", "rag"])
    answers = first.run.path / ANSWERS
    lines = answers.read_text().splitlines()
    # as if the process died while q3 was being written: q3's answers missing, a torn last line
    kept = [line for line in lines if json.loads(line)["question_id"] != "q3"]
    answers.write_text("\n".join(kept) + '\n{"question_id": "q3", "pipel')
    manifest = json.loads((first.run.path / MANIFEST).read_text())
    (first.run.path / MANIFEST).write_text(json.dumps(manifest | {"status": "running"}))

    again = chats()
    second = make_evaluation(tmp_path, again).run("hr", records, ["prompt", "rag"])
    assert second.resumed and second.run.run_id == first.run.run_id and second.asked == 1
    assert again["prompt"].asked == ["q3"] and again["rag"].asked == ["q3"]
    assert second.summary["status"] == "complete" and second.summary["answered"] == 6

    def untimed(summary: dict) -> dict:
        return {p: {k: v for k, v in m.items() if not k.endswith("_s")} for p, m in summary["metrics"].items()}

    assert untimed(second.summary) == untimed(first.summary)

    # a complete run is not resumed: the same evaluation again starts a new run
    third = make_evaluation(tmp_path, chats()).run("hr", records, ["prompt", "rag"])
    assert not third.resumed and third.run.run_id != first.run.run_id and third.asked == 3


def test_a_run_named_in_the_earlier_id_format_is_still_resumed_and_listed(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")
    first = make_evaluation(tmp_path, chats()).run("hr", records[:2], ["prompt"])
    assert first.run.run_id.endswith("-hr") and first.run.run_id[:8].isdigit()  # <time>-<domain>
    old = first.run.path.with_name("hr-20200101-000000")  # <domain>-<time>, as runs were named before
    first.run.path.rename(old)
    manifest = json.loads((old / MANIFEST).read_text())
    (old / MANIFEST).write_text(json.dumps(manifest | {"run_id": old.name, "status": "running"}))

    evaluation = make_evaluation(tmp_path, chats())
    again = evaluation.run("hr", records[:2], ["prompt"])
    assert again.resumed and again.run.run_id == old.name and again.asked == 0
    assert [r.run_id for r in list_runs(evaluation.settings)] == [old.name]


def test_an_interrupted_run_keeps_what_it_finished(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")

    def stop(progress) -> None:
        raise KeyboardInterrupt

    slow = {p: ByQuestion(replies=r, delay=0.05) for p, r in REPLIES.items()}  # q2 is still in flight at Ctrl-C
    evaluation = make_evaluation(tmp_path, slow)
    with pytest.raises(KeyboardInterrupt):
        evaluation.run("hr", records, ["prompt"], on_progress=stop)
    (run_path,) = evals_dir(evaluation.settings).iterdir()
    run = RunDir(run_path)
    assert run.manifest()["status"] == "partial" and run.summary()["status"] == "partial"
    finished = {a["question_id"] for a in run.answers()}
    assert "q1" in finished and len(finished) < 3
    again = chats()
    outcome = make_evaluation(tmp_path, again).run("hr", records, ["prompt"])
    assert outcome.resumed and set(again["prompt"].asked) == {"q1", "q2", "q3"} - finished
    assert outcome.summary["status"] == "complete"


def test_a_failing_pipeline_is_recorded_as_an_error(tmp_path: Path, qa_file: Path) -> None:
    down = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    broken = {"prompt": ByQuestion(replies=REPLIES["prompt"]), "rag": ScriptedChat(error=down)}
    outcome = make_evaluation(tmp_path, broken).run("hr", load_qa(qa_file, "test"), ["prompt", "rag"])
    rag = outcome.summary["metrics"]["rag"]
    assert rag["errors"] == 3 and rag["answered"] == 0 and rag["correct"] == 0.0
    assert outcome.summary["metrics"]["prompt"]["errors"] == 0
    row = next(a for a in outcome.run.answers() if a["pipeline"] == "rag")
    assert row["status"] == "error" and row["error"].startswith("cannot reach the model endpoint")
    # --retry-errors asks the failed pipeline again, and only it
    fixed = chats()
    retried = make_evaluation(tmp_path, fixed).run(
        "hr", load_qa(qa_file, "test"), ["prompt", "rag"], run_id=outcome.run.run_id, retry_errors=True
    )
    assert fixed["prompt"].asked == [] and sorted(fixed["rag"].asked) == ["q1", "q2", "q3"]
    assert retried.summary["metrics"]["rag"]["errors"] == 0


def test_a_named_run_with_other_questions_is_refused(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")
    first = make_evaluation(tmp_path, chats()).run("hr", records, ["prompt"], run_id="mine")
    assert first.run.run_id == "mine"
    with pytest.raises(ValueError, match="asked other questions"):
        make_evaluation(tmp_path, chats()).run("hr", records[:2], ["prompt"], run_id="mine")


def test_report_escapes_model_and_document_text_and_compare_shows_changes(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file)  # all four, q4 has markup in the question
    replies = {"prompt": REPLIES["prompt"] | {"q4": "<img src=x onerror=alert(1)>"},
               "rag": REPLIES["rag"] | {"q4": "green [1]"}}  # fmt: skip
    a = make_evaluation(tmp_path, {p: ByQuestion(replies=r) for p, r in replies.items()}).run(
        "hr", records, ["prompt", "rag"]
    )
    better = {"prompt": replies["prompt"] | {"q1": "Tuesday"}, "rag": replies["rag"]}
    b = make_evaluation(tmp_path, {p: ByQuestion(replies=r) for p, r in better.items()}).run(
        "hr", records, ["prompt", "rag"], fresh=True
    )
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    run_a, run_b = load_run(settings, a.run.run_id), load_run(settings, b.run.run_id)
    page = render_html([run_a, run_b])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>badge</b>" not in page and "&lt;b&gt;badge&lt;/b&gt;" in page
    assert "<script" not in page.lower()
    assert "<svg" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "Worst misses" in page and "Settings snapshot" in page
    diff = compare_runs(run_a, run_b)
    assert diff["fixed"] == 1 and diff["broken"] == 0
    assert [(c["question_id"], c["pipeline"]) for c in diff["changed"]] == [("q1", "prompt")]
    assert diff["metrics"]["prompt"]["correct"]["change"] == pytest.approx(0.25)


def test_the_judge_grades_each_answer(tmp_path: Path, qa_file: Path) -> None:
    from tests.unit.test_eval_judge import FakeJudgeServer
    from triptych.evaluate.judge import Judge
    from triptych.llm.capable import CapableEndpoint
    from triptych.settings import EndpointConfig

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    server = FakeJudgeServer('{"verdict": "correct", "reason": "ok"}')
    judge = Judge(
        settings,
        CapableEndpoint(EndpointConfig(model="compatible/judge-model", base_url="http://judge/v1"), "the judge"),
        http_client=server.client(),
    )
    outcome = make_evaluation(tmp_path, chats(), judge=judge).run("hr", load_qa(qa_file, "test"), ["prompt"])
    assert len(server.requests) == 3
    assert {a["judge"]["verdict"] for a in outcome.run.answers()} == {"correct"}
    assert outcome.summary["judge"] == "judge-model"
    assert outcome.summary["metrics"]["prompt"]["judge"] == {
        "judged": 3,
        "correct": 3,
        "partially": 0,
        "wrong": 0,
        "score": 1.0,
    }


def test_answers_the_model_did_not_finish_are_counted_cut_short_in_the_scores(tmp_path: Path, qa_file: Path) -> None:
    records = load_qa(qa_file, "test")
    cut = chats()
    cut["rag"].finish_reason = "length"  # every RAG answer ran into the token limit
    outcome = make_evaluation(tmp_path, cut).run("hr", records, ["prompt", "rag"], qa_file=str(qa_file), split="test")
    assert outcome.summary["metrics"]["rag"]["cut_short"] == 3
    assert outcome.summary["metrics"]["prompt"]["cut_short"] == 0
    rows = [json.loads(line) for line in (outcome.run.path / ANSWERS).read_text().splitlines()]
    assert {r["pipeline"]: r["cut_short"] for r in rows if r["question_id"] == "q1"} == {
        "prompt": None, "rag": "cut short at the token limit (TRIPTYCH_MAX_TOKENS)"}  # fmt: skip
