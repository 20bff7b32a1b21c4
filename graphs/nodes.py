"""Nodes shared by the pipelines: retrieve, build the prompt's messages, generate, and the short-cuts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graphs.context import PipelineContext, as_langchain
from graphs.state import Answer, PipelineState
from triptych.documents.chunking import Chunk
from triptych.llm.cpu import CpuMeter, cpu_used
from triptych.llm.generate import stream_answer
from triptych.passages import excerpts_context, found_in, select_excerpts

NOT_IN_DOCUMENTS = "Not in the documents."


def report(kind: str, text: str = "") -> None:
    """Tell whoever streams the graph with stream_mode "custom": 'queued', 'started' or a 'token' of text."""
    try:
        write = get_stream_writer()
    except RuntimeError:  # called outside a graph run (a node tested directly)
        return
    write({"kind": kind, "text": text})


def elapsed(ctx: PipelineContext) -> float:
    """Seconds since the pipeline started."""
    return time.perf_counter() - ctx.started_at


async def retrieve(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """Top chunks for the question, numbered [1], [2]... in rank order."""
    ctx = runtime.context
    if ctx.retriever is None:
        domain = state.get("domain") or "NAME"
        raise LookupError(f"no document index for domain {domain!r}: run `triptych ingest PATH --domain {domain}`")
    documents = await as_langchain(ctx.retriever).ainvoke(state["question"])  # a retriever step in traces
    return {"sources": [replace(Chunk.from_document(d), n=i) for i, d in enumerate(documents, start=1)]}


def has_sources(state: PipelineState) -> str:
    """Route: generate from the chunks, or say the documents hold nothing relevant."""
    return "select_context" if state.get("sources") else "no_context"


async def select_context(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """The sentences of the retrieved chunks that answer the question, within the token budget, as [n] blocks."""
    ctx = runtime.context
    excerpts = await asyncio.to_thread(
        select_excerpts, state["question"], state["sources"], ctx.selection, embed=ctx.embed
    )
    return {"context": excerpts_context(excerpts)}


async def locate_answer(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """Which sources hold the answer's words: shown as "found in [n]", computed here, not cited by the model."""
    return {"found_in": found_in(state.get("answer", ""), state.get("sources", []), state["question"])}


def to_lc(messages: list[dict[str, str]]) -> list[BaseMessage]:
    """OpenAI-format messages as LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](m["content"]) for m in messages]


def system_and_question(system: str, question: str, shots: list[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """A system message, few-shot turns, then the question."""
    messages = [{"role": "system", "content": system}]
    for q, a in shots:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": question})
    return messages


def fill(text: str, **fields: str) -> str:
    """A template's text with its {placeholders} filled in; unknown ones are left as they are."""
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    return text


def template(name: str, ctx: PipelineContext, **fields: str) -> str:
    """A prompt template by name, filled in."""
    return fill(ctx.prompt(name), **fields)


QUEUED_EVERY_S = 0.5


async def wait_turn(gate: Any) -> None:
    """Take a slot of the local model's queue (none needed for remote endpoints: `gate` is None).

    While it waits, 'queued' is reported every half second with how many wait: the page shows it,
    and a page whose viewer has left or clicked elsewhere notices at once and cancels the run.
    """
    if gate is None:
        return
    if not gate.locked():
        await gate.acquire()
        return
    turn = asyncio.ensure_future(gate.acquire())
    try:
        await asyncio.sleep(0)  # let it join the line, so the count includes it
        while True:
            waiting = getattr(gate, "waiting", None)
            report("queued", f"{waiting} waiting for the local model" if waiting else "")
            done, _ = await asyncio.wait({turn}, timeout=QUEUED_EVERY_S)
            if done:
                turn.result()
                return
    except BaseException:
        if turn.done() and not turn.cancelled() and turn.exception() is None:
            gate.release()  # the slot came just as this run was cancelled: pass it on
        else:
            turn.cancel()
        raise


# Where an answer from passages is over: a small model that has said its answer goes on to write a passage
# of its own ("\n[9] (Error codes...)") or the next question of the prompt's pattern. Measured on the demo
# corpora (support_kb test split): invented passages followed the answer in 3 of 16.
PASSAGE_STOPS = ("\n[", "\nQuestion:", "\nPassages:")


def attributable_meter(ctx: PipelineContext) -> CpuMeter | None:
    """The context's CPU meter where the difference of two readings is this answer's alone: a one-slot gate.

    With more slots, other generations share the servers meanwhile; remote endpoints have no meter.
    """
    return ctx.cpu_meter if getattr(ctx.gate, "slots", None) == 1 else None


async def generate(state: PipelineState, runtime: Runtime[PipelineContext]) -> Answer:
    """Stream the answer from the pipeline's model, waiting for the shared local model if needed.

    While it holds the local model's gate, the servers' CPU time is read before and after: the answer's `cpu_s`.
    """
    ctx = runtime.context
    assert ctx.chat is not None, "generate needs a chat model"
    meter = attributable_meter(ctx)
    wait_from = time.perf_counter()
    await wait_turn(ctx.gate)
    try:
        queued = time.perf_counter() - wait_from
        cpu_before = meter() if meter is not None else None
        report("started")
        result = await stream_answer(
            ctx.chat,
            to_lc(state["messages"]),
            ctx.model,
            on_token=lambda t: report("token", t),
            usage_counter=ctx.usage_counter,
            started_at=ctx.started_at,
            stop=PASSAGE_STOPS if state.get("context") else None,
        )
        cpu = None if meter is None or cpu_before is None else cpu_used(cpu_before, meter())
    finally:
        if ctx.gate is not None:
            ctx.gate.release()
    cost = ctx.cost(result.prompt_tokens, result.completion_tokens)
    return Answer(answer=result.answer, model=result.model, queued_s=queued, ttft_s=result.ttft_s,
                  total_s=result.latency_s, cpu_s=cpu, prompt_tokens=result.prompt_tokens,
                  completion_tokens=result.completion_tokens, cost_usd=cost, notice=ctx.notice,
                  finish_reason=result.finish_reason, cut_short=result.cut_short)  # fmt: skip


def fixed_answer(ctx: PipelineContext, answer: str, notice: str | None) -> Answer:
    """An answer given without calling the model (timed, zero tokens; no CPU time of a metered local model)."""
    report("token", answer)
    t = elapsed(ctx)
    cpu = 0.0 if attributable_meter(ctx) is not None else None
    return Answer(answer=answer, model=ctx.model, notice=notice, queued_s=0.0, ttft_s=t, total_s=t, cpu_s=cpu,
                  prompt_tokens=0, completion_tokens=0, cost_usd=0.0)  # fmt: skip


async def no_context(state: PipelineState, runtime: Runtime[PipelineContext]) -> Answer:
    """Nothing scored above the minimum: say so rather than let the model guess."""
    return fixed_answer(runtime.context, NOT_IN_DOCUMENTS, "no passage scored above the minimum score")


def is_available(state: PipelineState, runtime: Runtime[PipelineContext]) -> bool:
    """Whether the pipeline's model exists (a fine-tuned model may not yet)."""
    return runtime.context.unavailable is None


async def not_available(state: PipelineState, runtime: Runtime[PipelineContext]) -> Answer:
    """Explain why there is no answer (e.g. no adapter trained yet) instead of failing."""
    ctx = runtime.context
    return fixed_answer(ctx, "", ctx.unavailable)
