"""Fine-tuned + RAG pipeline (off by default): the fine-tuned model answering from retrieved chunks."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.finetuned import route
from graphs.nodes import (
    generate,
    has_sources,
    no_context,
    not_available,
    numbered_context,
    retrieve,
    system_and_question,
    template,
)
from graphs.state import PipelineState, QuestionInput


async def build_messages(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """The fine-tuned model's minimal prompt plus the numbered chunks."""
    system = template("finetuned_rag_system", runtime.context, context=numbered_context(state["sources"]))
    return {"messages": system_and_question(system, state["question"])}


def route_to_retrieval(state: PipelineState, runtime: Runtime[PipelineContext]) -> str:
    """Retrieve only when there is a fine-tuned model to answer."""
    return "retrieve" if route(state, runtime) == "build_messages" else "not_available"


def compile() -> CompiledStateGraph:  # noqa: A001
    """(retrieve -> (build_messages -> generate | no_context) | not_available)."""
    graph = StateGraph(PipelineState, input_schema=QuestionInput, context_schema=PipelineContext)
    graph.add_node("retrieve", retrieve)
    graph.add_node("build_messages", build_messages)
    graph.add_node("generate", generate)
    graph.add_node("no_context", no_context)
    graph.add_node("not_available", not_available)
    graph.add_conditional_edges(START, route_to_retrieval, ["retrieve", "not_available"])
    graph.add_conditional_edges("retrieve", has_sources, ["build_messages", "no_context"])
    graph.add_edge("build_messages", "generate")
    for node in ("generate", "no_context", "not_available"):
        graph.add_edge(node, END)
    return graph.compile(name="finetuned_rag")
