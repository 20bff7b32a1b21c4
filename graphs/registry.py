"""The pipelines Triptych can compare, with uniform metadata the UI and CLI loop over.

Adding a pipeline is one module with a `compile()` plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from langgraph.graph.state import CompiledStateGraph

from graphs import finetuned, finetuned_rag, prompt, rag


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline: what it is called, what it changes, how to build it, which endpoint it uses."""

    id: str
    label: str
    what_changed: str  # one line for the column header
    build: Callable[[], CompiledStateGraph]
    endpoint: str  # whose settings it uses: prompt, rag or finetuned
    uses_retrieval: bool = False
    uses_adapter: bool = False  # needs the domain's fine-tuned model
    default: bool = True  # selected unless the user changes it

    def graph(self) -> CompiledStateGraph:
        """The compiled graph (compiled once per process)."""
        return _compiled(self.id)


PIPELINES: dict[str, PipelineSpec] = {
    spec.id: spec
    for spec in (
        PipelineSpec("prompt", "Prompt", "Base model + engineered prompt (role, rules, few-shot); no documents.",
                     prompt.compile, endpoint="prompt"),
        PipelineSpec("rag", "RAG", "Same base model, answering only from retrieved document chunks, cited [n].",
                     rag.compile, endpoint="rag", uses_retrieval=True),
        PipelineSpec("finetuned", "Fine-tuned", "Base model + LoRA adapter trained on the domain's Q&A; no documents.",
                     finetuned.compile, endpoint="finetuned", uses_adapter=True),
        PipelineSpec("finetuned_rag", "Fine-tuned + RAG", "The fine-tuned model, answering from retrieved chunks.",
                     finetuned_rag.compile, endpoint="finetuned", uses_retrieval=True, uses_adapter=True,
                     default=False),
    )
}  # fmt: skip

DEFAULT_PIPELINES = [p.id for p in PIPELINES.values() if p.default]


def get_spec(pipeline_id: str) -> PipelineSpec:
    """A spec by id, or a KeyError listing the known ids."""
    try:
        return PIPELINES[pipeline_id]
    except KeyError:
        raise KeyError(f"unknown pipeline {pipeline_id!r}; expected one of {', '.join(PIPELINES)}") from None


@cache
def _compiled(pipeline_id: str) -> CompiledStateGraph:
    return PIPELINES[pipeline_id].build()
