"""The pipelines as LangGraph-server graphs (see langgraph.json): question in, one pipeline's result out.

The app and CLI hand each graph its dependencies through `context=` (graphs/compare.py). A LangGraph
server only passes JSON, so these wrappers build the same dependencies from Triptych's settings
(environment / .env) and run one pipeline through the comparison runner: same endpoints, same
retrieval, same timings and failure handling.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graphs.compare import Comparison
from graphs.result import PipelineResult
from graphs.state import QuestionInput


class ServedState(QuestionInput, total=False):
    """The input question plus the pipeline's result, as plain JSON."""

    result: dict[str, Any]


@cache
def comparison() -> Comparison:
    """One runner per server process (the local model servers start on first use)."""
    from triptych.llm.server import LocalModels
    from triptych.settings import get_settings

    settings = get_settings()
    return Comparison(settings, LocalModels(settings))


def served_graph(pipeline_id: str) -> CompiledStateGraph:
    """A one-node graph that answers with pipeline `pipeline_id`."""

    async def answer(state: ServedState) -> dict[str, Any]:
        results = await comparison().arun(state["question"], state.get("domain"), [pipeline_id])
        result: PipelineResult = results[pipeline_id]
        return {"result": result.to_dict()}

    graph = StateGraph(ServedState, input_schema=QuestionInput)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(name=f"triptych-{pipeline_id}")


prompt = served_graph("prompt")
rag = served_graph("rag")
finetuned = served_graph("finetuned")
finetuned_rag = served_graph("finetuned_rag")
