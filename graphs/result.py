"""One pipeline's result: what a column shows, the history keeps and an evaluation scores.

The answer part of it is what the graph's state holds (graphs/state.py `PipelineState`); the result
adds which pipeline it was, the setup time and the error, if any. Every list of its fields is
derived from this class (`from_state`, `to_dict`, `from_dict`), never written out again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from triptych.documents.chunking import Chunk


@dataclass
class PipelineResult:
    """One column of a comparison."""

    pipeline: str
    label: str
    answer: str = ""
    model: str = ""
    sources: list[Chunk] = field(default_factory=list)  # the chunks the model was given, numbered `n` (RAG)
    messages: list[dict[str, str]] = field(default_factory=list)  # the exact prompt sent
    setup_s: float | None = None  # resolving the endpoint, starting the local server (not in ttft/total)
    queued_s: float | None = None  # waiting for the shared local model
    ttft_s: float | None = None  # from pipeline start to the first answer token
    total_s: float | None = None  # from pipeline start to the last token
    # CPU seconds the local model servers used for this answer; None: a remote endpoint, several local
    # generations at once (TRIPTYCH_LOCAL_CONCURRENCY > 1), or a record made before it was measured
    cpu_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float = 0.0
    notice: str | None = None  # a remark that is not an error (e.g. 'not fine-tuned yet')
    finish_reason: str | None = None  # as the endpoint reported it ("stop", "length"); None: fixed or not run
    cut_short: str | None = None  # why the answer is incomplete; None when the model finished it
    # a fine-tuned pipeline only: whether its adapter was trained on this very question (None: no adapter)
    seen_in_training: bool | None = None
    found_in: list[int] = field(default_factory=list)  # sources holding the answer's words (matched, not cited)
    error: str | None = None

    @classmethod
    def from_state(cls, pipeline: str, label: str, state: Mapping[str, Any], **extra: Any) -> PipelineResult:
        """The result of a finished graph run: the state's values for this class's fields (None: the default)."""
        names = {f.name for f in fields(cls)}
        return cls(pipeline, label, **{k: v for k, v in state.items() if k in names and v is not None}, **extra)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineResult:
        """Rebuild from `to_dict` output (JSON); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["sources"] = [Chunk.from_dict(s) for s in data.get("sources") or []]
        return cls(**values)

    def to_dict(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Plain dict for JSON, without the `exclude`d fields."""
        return {k: v for k, v in asdict(self).items() if k not in exclude}
