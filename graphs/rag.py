"""RAG pipeline: retrieve chunks from the domain's Chroma index, then answer only from them, citing [n]."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.nodes import (
    generate,
    has_sources,
    locate_answer,
    no_context,
    retrieve,
    select_context,
    system_and_question,
    template,
)
from graphs.state import PipelineState, QuestionInput

Node = Callable[[PipelineState, Runtime[PipelineContext]], Awaitable[dict[str, Any]]]


def build_messages_with(template_name: str) -> Node:
    """A node putting the numbered chunks (as data) into the named system template, then the question."""

    async def build_messages(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
        system = template(template_name, runtime.context, context=state["context"])
        return {"messages": system_and_question(system, state["question"])}

    return build_messages


def add_retrieval_answer(graph: StateGraph, template_name: str) -> None:
    """retrieve -> (select_context -> build_messages -> generate -> locate_answer | no_context) -> END."""
    graph.add_node("retrieve", retrieve)
    graph.add_node("select_context", select_context)
    graph.add_node("build_messages", build_messages_with(template_name))
    graph.add_node("generate", generate)
    graph.add_node("locate_answer", locate_answer)
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
