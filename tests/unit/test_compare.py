"""The comparison runner with scripted pipelines: concurrency, streaming, queueing, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import openai
import pytest

from graphs.compare import Comparison, Event
from graphs.context import PipelineContext
from graphs.registry import PipelineSpec
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych.llm.queue import ModelQueue
from triptych.settings import Settings


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def comparison(chats: dict[str, ScriptedChat], local: set[str] = frozenset(), **kw) -> Comparison:
    """A runner whose pipelines use the given fakes; those in `local` share the local-model gate."""
    retriever = FakeRetriever([make_chunk("c1", "d", "d.md", "D", "text", 0, 4, 0.9)])

    def prepare(spec: PipelineSpec, domain: str | None, gate: ModelQueue) -> PipelineContext:
        return PipelineContext(
            chat=chats[spec.id], model=f"m-{spec.id}", retriever=retriever, gate=gate if spec.id in local else None
        )

    return Comparison(settings(**kw), prepare=prepare)


def collect(runner: Comparison, pipelines: list[str]) -> tuple[list[Event], dict]:
    events: list[Event] = []
    results = runner.run("q?", "hr_handbook", pipelines, on_event=events.append)
    return events, results


def test_all_pipelines_answer_and_tokens_interleave() -> None:
    chats = {p: ScriptedChat(reply=f"{p} one two three four", delay=0.02) for p in ("prompt", "rag", "finetuned")}
    events, results = collect(comparison(chats), ["prompt", "rag", "finetuned"])
    assert list(results) == ["prompt", "rag", "finetuned"]
    assert {p: r.answer for p, r in results.items()} == {p: f"{p} one two three four" for p in chats}
    order = [e.pipeline for e in events if e.kind == "token"]
    # truly concurrent: before the first pipeline has sent all its tokens, the others have sent some
    first_done = max(i for i, p in enumerate(order) if p == order[0])
    assert len(set(order[: first_done + 1])) == 3


def test_local_generations_queue_behind_each_other() -> None:
    chats = {p: ScriptedChat(reply="a b c", delay=0.02) for p in ("prompt", "rag")}
    events, results = collect(comparison(chats, local={"prompt", "rag"}, local_concurrency=1), ["prompt", "rag"])
    kinds = [(e.pipeline, e.kind) for e in events if e.kind != "token"]
    queued = [p for p, k in kinds if k == "queued"]
    assert len(queued) == 1
    waiting = queued[0]
    other = "rag" if waiting == "prompt" else "prompt"
    tokens = [e.pipeline for e in events if e.kind == "token"]
    # the waiting pipeline's tokens all come after the other's: one generation at a time
    assert tokens == [other] * 3 + [waiting] * 3
    assert results[waiting].queued_s > 0.04 > results[other].queued_s


def test_two_local_slots_run_side_by_side() -> None:
    chats = {p: ScriptedChat(reply="a b c", delay=0.02) for p in ("prompt", "rag")}
    events, _ = collect(comparison(chats, local={"prompt", "rag"}, local_concurrency=2), ["prompt", "rag"])
    assert not [e for e in events if e.kind == "queued"]


def test_one_failing_endpoint_only_fails_its_column() -> None:
    down = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    chats = {
        "prompt": ScriptedChat(reply="fine"),
        "rag": ScriptedChat(error=down),
        "finetuned": ScriptedChat(reply="also fine"),
    }
    _, results = collect(comparison(chats), ["prompt", "rag", "finetuned"])
    assert results["rag"].error == "cannot reach the model endpoint at http://127.0.0.1:9: is it running?"
    assert results["rag"].answer == ""
    assert results["prompt"].answer == "fine" and results["prompt"].error is None
    assert results["finetuned"].answer == "also fine"


def test_timeout_is_per_pipeline() -> None:
    chats = {"prompt": ScriptedChat(reply="quick"), "rag": ScriptedChat(reply="w " * 50, delay=0.05)}
    _, results = collect(comparison(chats, pipeline_timeout_s=0.4), ["prompt", "rag"])
    assert results["rag"].error == "timed out after 0.4 s (TRIPTYCH_PIPELINE_TIMEOUT_S)"
    assert 0.35 < results["rag"].total_s < 2.0
    assert results["prompt"].answer == "quick"


def test_a_failure_while_preparing_is_isolated_too() -> None:
    def prepare(spec, domain, gate):
        if spec.id == "rag":
            raise LookupError("no document index for domain 'x': run `triptych ingest PATH --domain x`")
        return PipelineContext(chat=ScriptedChat(reply="ok"), model="m")

    results = Comparison(settings(), prepare=prepare).run("q", "x", ["prompt", "rag"])
    assert results["rag"].error.startswith("no document index for domain 'x'")
    assert results["prompt"].answer == "ok"


def test_default_prepare_reports_missing_adapter(tmp_path) -> None:
    runner = Comparison(settings(data_dir=tmp_path))
    results = runner.run("q", "hr_handbook", ["finetuned"])
    assert results["finetuned"].notice == "not fine-tuned yet: run `triptych finetune --domain hr_handbook`"
    assert results["finetuned"].error is None


def test_forget_retriever_rebuilds_it_on_next_use() -> None:
    built: list[str] = []

    def retriever_for(domain: str) -> FakeRetriever:
        built.append(domain)
        return FakeRetriever([])

    runner = Comparison(settings(), retriever_for=retriever_for)
    assert runner.retriever("hr") is runner.retriever("hr")
    runner.forget_retriever("hr")
    runner.retriever("hr")
    assert built == ["hr", "hr"]


def test_every_graph_run_names_its_pipeline_domain_question_and_eval_run() -> None:
    from langchain_core.callbacks import AsyncCallbackHandler

    seen: list[dict] = []

    class Recorder(AsyncCallbackHandler):
        async def on_chat_model_start(self, serialized, messages, *, metadata=None, tags=None, **kw) -> None:  # noqa: ANN001
            seen.append({"metadata": metadata, "tags": tags})

    chat = ScriptedChat(reply="ok", callbacks=[Recorder()])
    runner = Comparison(settings(), prepare=lambda spec, domain, gate: PipelineContext(chat=chat, model="m"))
    asyncio.run(runner.arun("Who approves travel?", "hr", ["prompt"], eval_run="hr-20250101T000000"))
    assert seen[0]["metadata"] | {"pipeline": "prompt", "domain": "hr", "question": "Who approves travel?",
                                  "eval_run_id": "hr-20250101T000000"} == seen[0]["metadata"]  # fmt: skip
    assert {"triptych", "pipeline:prompt", "domain:hr", "eval:hr-20250101T000000"} <= set(seen[0]["tags"])


def test_two_sessions_share_one_queue_for_the_local_model() -> None:
    """Two browser sessions (two comparisons in one app process) never generate on the local model at once."""
    from triptych.llm.server import LocalModels

    shared = LocalModels(settings(local_concurrency=1))  # no server starts: the fakes answer
    chats = {"a": ScriptedChat(reply="a1 a2 a3 a4", delay=0.02), "b": ScriptedChat(reply="b1 b2 b3 b4", delay=0.02)}
    tokens: list[str] = []
    lock = threading.Lock()

    def session(name: str) -> None:
        def prepare(spec: PipelineSpec, domain: str | None, gate: ModelQueue) -> PipelineContext:
            return PipelineContext(chat=chats[name], model="local", gate=gate)

        def on_event(event: Event) -> None:
            if event.kind == "token":
                with lock:
                    tokens.append(event.text.strip())

        Comparison(shared.settings, shared, prepare=prepare).run("q", None, ["prompt"], on_event=on_event)

    threads = [threading.Thread(target=session, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(tokens) == ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]
    first = tokens[0][0]
    assert [t[0] for t in tokens] == [first] * 4 + [("b" if first == "a" else "a")] * 4  # one after the other


def test_an_answer_the_model_did_not_finish_is_marked_cut_short() -> None:
    chats = {
        "prompt": ScriptedChat(reply="a complete answer", finish_reason="stop"),
        "rag": ScriptedChat(reply="an answer that ran out of", finish_reason="length"),
        "finetuned": ScriptedChat(reply="an answer the server stopped", finish_reason=None),
    }
    _, results = collect(comparison(chats), ["prompt", "rag", "finetuned"])
    assert results["prompt"].cut_short is None and results["prompt"].finish_reason == "stop"
    assert results["rag"].cut_short == "cut short at the token limit (TRIPTYCH_MAX_TOKENS)"
    assert results["rag"].finish_reason == "length"
    assert results["finetuned"].cut_short.startswith("cut short: the stream ended without saying it was finished")
    assert results["finetuned"].to_dict()["cut_short"] == results["finetuned"].cut_short  # kept in the history


def test_an_abandoned_comparison_stops_generating_and_frees_the_local_model() -> None:
    """A rerun (a click, a new question, a closed tab) raises in the page's event callback."""

    class Rerun(Exception):
        pass

    chats = {"prompt": ScriptedChat(reply=" ".join(["word"] * 200), delay=0.02)}  # about 4 s if left running
    runner = comparison(chats, local={"prompt"})

    def on_event(event: Event) -> None:
        if event.kind == "token":
            raise Rerun

    started = time.perf_counter()
    with pytest.raises(Rerun):
        runner.run("q", None, ["prompt"], on_event=on_event)
    deadline = time.perf_counter() + 1.0
    while runner.queue.held and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert runner.queue.held == 0, "the local model is still held by the abandoned comparison"
    assert time.perf_counter() - started < 1.5
    # and the session's next question is answered at once, without queueing behind the abandoned one
    chats["prompt"] = ScriptedChat(reply="next")
    _, results = collect(runner, ["prompt"])
    assert results["prompt"].answer == "next"
    assert results["prompt"].queued_s < 0.5


def test_a_waiting_column_keeps_saying_it_waits_and_a_viewer_who_leaves_stops_waiting() -> None:
    """While queued, 'queued' comes every half second: a page that has been left notices and cancels."""

    class Left(Exception):
        pass

    runner = comparison({"prompt": ScriptedChat(reply="x")}, local={"prompt"})
    queued: list[Event] = []

    def on_event(event: Event) -> None:
        if event.kind == "queued":
            queued.append(event)
            if len(queued) == 3:
                raise Left

    async def hold_the_model() -> None:
        await runner.queue.acquire()  # someone else's long answer

    asyncio.run(hold_the_model())
    with pytest.raises(Left):
        runner.run("q", None, ["prompt"], on_event=on_event)
    assert [e.text for e in queued] == ["1 waiting for the local model"] * 3
    deadline = time.perf_counter() + 1.0
    while runner.queue.waiting and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert runner.queue.waiting == 0  # the viewer who left is no longer in the line


@pytest.mark.parametrize(("field", "value"), [("top_k", 3), ("min_score", 0.5), ("hybrid", False), ("focus_chunks", 0)])
def test_a_setup_that_changes_retrieval_gets_its_own_retriever(field: str, value: object) -> None:
    from triptych.setups import default_setup

    built: list[object] = []

    def retriever_for(domain: str) -> FakeRetriever:
        built.append(domain)
        return FakeRetriever([])

    runner = Comparison(settings(), retriever_for=retriever_for)
    same = default_setup(runner.settings)
    changed = same.edited({f"retrieval.{field}": value})
    assert runner.under(same).retriever("hr") is runner.retriever("hr")  # the same knobs share one
    assert runner.under(changed).retriever("hr") is not runner.retriever("hr")
    assert len(built) == 2
