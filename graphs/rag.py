"""RAG pipeline: retrieve chunks from the domain's Chroma index, then answer only from them, citing [n]."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.nodes import (
    fill,
    generate,
    has_sources,
    locate_answer,
    no_context,
    retrieve,
    select_context,
    system_and_question,
)
from graphs.state import PipelineState, QuestionInput
from triptych.evaluate.metrics import normalize_answer, without_citations

Node = Callable[[PipelineState, Runtime[PipelineContext]], Awaitable[dict[str, Any]]]


# One domain-neutral worked example: a small model copies the shape of the answer it is shown (the
# fact, in the passage's words, then [n]) far more reliably than it follows a rule (without it RAG
# answered 20.5 % of the demo corpora's train questions, with it 33-35 %). Its names are abstract
# (unit Q7, crates): an office in Lisbon with desks leaked into answers ("The Lisbon office uses ...")
# when the model found nothing it trusted. README, "What the embedded default measures".
EXAMPLE_CONTEXT = "[1] (Section 2)\nUnit Q7 was installed in 2019. It holds 45 crates and one spare pump."
EXAMPLE_QUESTION = "How many crates does unit Q7 hold?"
EXAMPLE_ANSWER = "45 crates [1]."


def build_messages_with(template_name: str) -> Node:
    """A node: the named system template, the worked example, then the question around the chosen passages.

    The passages go into the user turn (`rag_user.txt`: the question before and after them). A system
    template of one's own that still holds `{context}` (TRIPTYCH_PROMPTS_DIR) gets them there instead.
    A model trained with passages (the hybrid's with-passages adapter) gets no worked example: it was
    trained on exactly the system and user turns, and the example would only cost prefill.
    """

    async def build_messages(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
        ctx = runtime.context
        system = ctx.prompt(template_name)
        if "{context}" in system:
            return {"messages": system_and_question(fill(system, context=state["context"]), state["question"])}
        user = ctx.prompt("rag_user")
        shot = (fill(user, question=EXAMPLE_QUESTION, context=EXAMPLE_CONTEXT), EXAMPLE_ANSWER)
        asked = fill(user, question=state["question"], context=state["context"])
        shots = [] if ctx.adapter_mode == "with-passages" else [shot]
        return {"messages": system_and_question(system, asked, shots)}

    return build_messages


_EXAMPLE_WORDS = normalize_answer(without_citations(EXAMPLE_ANSWER))
REPEATED_EXAMPLE = "the worked example's answer, not one from the passages: the model found nothing it could use"


async def locate_or_flag(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """`locate_answer`, and a notice when the answer is the worked example's own ("45 crates [1].").

    A small model that finds nothing it trusts sometimes copies the example verbatim (8 of 112 demo
    train questions); the column then says so instead of presenting it as read from the documents.
    """
    located = await locate_answer(state, runtime)
    if normalize_answer(without_citations(state.get("answer", ""))) != _EXAMPLE_WORDS:
        return located
    return {**located, "notice": "; ".join(n for n in (state.get("notice"), REPEATED_EXAMPLE) if n)}


def add_retrieval_answer(graph: StateGraph, template_name: str) -> None:
    """retrieve -> (select_context -> build_messages -> generate -> locate_answer | no_context) -> END."""
    graph.add_node("retrieve", retrieve)
    graph.add_node("select_context", select_context)
    graph.add_node("build_messages", build_messages_with(template_name))
    graph.add_node("generate", generate)
    graph.add_node("locate_answer", locate_or_flag)
    graph.add_node("no_context", no_context)
    graph.add_conditional_edges("retrieve", has_sources, ["select_context", "no_context"])
    graph.add_edge("select_context", "build_messages")
    graph.add_edge("build_messages", "generate")
    graph.add_edge("generate", "locate_answer")
    graph.add_edge("locate_answer", END)
    graph.add_edge("no_context", END)


def compile() -> CompiledStateGraph:  # noqa: A001
    """retrieve -> (select_context -> build_messages -> generate -> locate_answer | no_context)."""
    graph = StateGraph(PipelineState, input_schema=QuestionInput, context_schema=PipelineContext)
    add_retrieval_answer(graph, "rag_system")
    graph.add_edge(START, "retrieve")
    return graph.compile(name="rag")
