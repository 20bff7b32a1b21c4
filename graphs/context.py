"""Per-run dependencies handed to every graph through LangGraph's `context_schema`.

Tests pass a scripted chat model and an in-memory retriever here; nothing is patched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from pydantic import SkipValidation

from triptych.documents.chunking import Chunk
from triptych.llm.cpu import CpuMeter
from triptych.llm.factory import UsageCounter
from triptych.llm.queue import ModelQueue
from triptych.passages import SelectionConfig
from triptych.qa import QARecord

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


class RetrieverLike(Protocol):
    """What the RAG graphs need from triptych.retrieval.Retriever (the fakes in tests have just this)."""

    def search(self, query: str, k: int | None = None) -> list[Chunk]:
        """Top chunks for the query, best first, none below the minimum score."""
        ...


class SearchRetriever(BaseRetriever):
    """Any `RetrieverLike` as a LangChain retriever, returning its chunks as `Document`s."""

    searcher: SkipValidation[RetrieverLike]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [c.to_document() for c in self.searcher.search(query)]


def as_langchain(retriever: RetrieverLike) -> BaseRetriever:
    """The retriever itself where it is a LangChain one (triptych.retrieval.Retriever), else wrapped."""
    return retriever if isinstance(retriever, BaseRetriever) else SearchRetriever(searcher=retriever)


def load_prompt(name: str, prompts_dir: Path | None = None) -> str:
    """A prompt template by name: the user's folder first (TRIPTYCH_PROMPTS_DIR), else the bundled one."""
    for folder in (prompts_dir, PROMPTS_DIR):
        if folder is not None and (folder / f"{name}.txt").is_file():
            return (folder / f"{name}.txt").read_text(encoding="utf-8").strip()
    raise FileNotFoundError(f"prompt template {name}.txt not found in {prompts_dir or PROMPTS_DIR}")


@dataclass
class PipelineContext:
    """What one pipeline run may use."""

    chat: BaseChatModel | None  # None when the pipeline cannot run (see `unavailable`)
    model: str
    usage_counter: UsageCounter | None = None
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    retriever: RetrieverLike | None = None
    # How the retrieved chunks are cut down to what the model reads (see triptych/passages.py).
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    # Embeds texts for sentence selection (the retriever's own model); None: BM25 alone.
    embed: Callable[[list[str]], np.ndarray] | None = None
    few_shot: list[QARecord] = field(default_factory=list)
    prompts_dir: Path | None = None
    # Prompt texts by template name that replace the files (a setup's prompts: triptych/setups.py).
    prompts: dict[str, str] = field(default_factory=dict)
    few_shot_limit: int = 3  # training Q&A pairs the prompt pipeline shows as examples
    # Generations that share the local model's cores wait here, one (or N) at a time, process-wide
    # (triptych/llm/queue.py; anything with `locked()` and `async with` will do in tests).
    gate: ModelQueue | asyncio.Semaphore | None = None
    # CPU seconds so far of each local model server process (LocalModels.cpu_seconds; a fake in tests): read
    # before and after a generation on a one-slot gate, it gives the answer's `cpu_s`. None: not metered (remote).
    cpu_meter: CpuMeter | None = None
    started_at: float = field(default_factory=time.perf_counter)  # the pipeline's clock: built, then run at once
    unavailable: str | None = None  # why this pipeline cannot answer (e.g. not fine-tuned yet)
    notice: str | None = None  # a line the column shows with the answer (e.g. its server was restarted)
    adapter_mode: str | None = None  # the hybrid's adapter: "with-passages" (reads passages) or "closed-book"

    def prompt(self, name: str) -> str:
        """A prompt template by name: this run's own text (a setup's), else the file (`load_prompt`)."""
        text = self.prompts.get(name)
        return text.strip() if text is not None else load_prompt(name, self.prompts_dir)

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        """Estimated USD for the tokens used."""
        return ((prompt_tokens or 0) * self.price_in_per_1k + (completion_tokens or 0) * self.price_out_per_1k) / 1000
