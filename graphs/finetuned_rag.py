"""Fine-tuned + RAG pipeline (off by default): the fine-tuned model answering from retrieved chunks."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.nodes import is_available, not_available
from graphs.rag import add_retrieval_answer
from graphs.state import PipelineState, QuestionInput


def route(state: PipelineState, runtime: Runtime[PipelineContext]) -> str:
    """Retrieve only when there is a fine-tuned model to answer."""
    return "retrieve" if is_available(state, runtime) else "not_available"


def compile() -> CompiledStateGraph:  # noqa: A001
    """(retrieve -> (select_context -> build_messages -> generate -> locate_answer | no_context) | not_available)."""
    graph = StateGraph(PipelineState, input_schema=QuestionInput, context_schema=PipelineContext)
    add_retrieval_answer(graph, "finetuned_rag_system")
    graph.add_node("not_available", not_available)
    graph.add_conditional_edges(START, route, ["retrieve", "not_available"])
    graph.add_edge("not_available", END)
    return graph.compile(name="finetuned_rag")
