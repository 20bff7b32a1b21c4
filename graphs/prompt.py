"""Prompt pipeline: the base model with an engineered prompt (role, constraints, few-shot), no documents."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs.context import PipelineContext
from graphs.nodes import generate, system_and_question, template
from graphs.state import PipelineState, QuestionInput

# Shown when a domain has no training QA: teaches the format and the refusal.
GENERIC_SHOTS = [
    ("How many moons does Mars have?", "Two: Phobos and Deimos."),
    ("What is the internal code name of our next product?", "I don't know."),
]


def role_for(domain: str | None) -> str:
    """The role line: an assistant for the domain's company documents."""
    if not domain:
        return "a concise, careful assistant"
    return f"a concise, careful assistant for the company's {domain.replace('_', ' ')} questions"


async def build_messages(state: PipelineState, runtime: Runtime[PipelineContext]) -> dict[str, Any]:
    """Role and constraints, few-shot pairs from the domain's training QA, then the question."""
    ctx = runtime.context
    system = template("prompt_system", ctx, company_role=role_for(state.get("domain")))
    shots = [(r.question, r.answer) for r in ctx.few_shot if r.answerable][: ctx.few_shot_limit]
    shots.append(GENERIC_SHOTS[1])  # always show one refusal
    if len(shots) == 1:
        shots.insert(0, GENERIC_SHOTS[0])
    return {"messages": system_and_question(system, state["question"], shots)}


def compile() -> CompiledStateGraph:  # noqa: A001 - the graph's conventional entry point
    """build_messages -> generate."""
    graph = StateGraph(PipelineState, input_schema=QuestionInput, context_schema=PipelineContext)
    graph.add_node("build_messages", build_messages)
    graph.add_node("generate", generate)
    graph.add_edge(START, "build_messages")
    graph.add_edge("build_messages", "generate")
    graph.add_edge("generate", END)
    return graph.compile(name="prompt")
