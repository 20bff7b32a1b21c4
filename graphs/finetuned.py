"""Fine-tuned pipeline: the domain's fine-tuned model with a minimal prompt, no documents."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.nodes import generate, is_available, not_available, system_and_question, template
from graphs.state import PipelineState, QuestionInput


async def build_messages(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """The same minimal prompt the model was trained with, then the question."""
    return {"messages": system_and_question(template("finetuned_system", runtime.context), state["question"])}


def route(state: PipelineState, runtime: Runtime[PipelineContext]) -> str:
    """No fine-tuned model yet for this domain: explain instead of failing."""
    return "build_messages" if is_available(state, runtime) else "not_available"


def compile() -> CompiledStateGraph:  # noqa: A001
    """(build_messages -> generate | not_available)."""
    graph = StateGraph(PipelineState, input_schema=QuestionInput, context_schema=PipelineContext)
    graph.add_node("build_messages", build_messages)
    graph.add_node("generate", generate)
    graph.add_node("not_available", not_available)
    graph.add_conditional_edges(START, route, ["build_messages", "not_available"])
    graph.add_edge("build_messages", "generate")
    graph.add_edge("generate", END)
    graph.add_edge("not_available", END)
    return graph.compile(name="finetuned")
