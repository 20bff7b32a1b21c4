"""The pipelines' state: a narrow input (the question) and the answer state every pipeline fills."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NotRequired, TypedDict


@dataclass(frozen=True)
class Source:
    """A retrieved chunk shown as numbered context `[n]` and as a source in the UI."""

    n: int  # the number the answer cites: [n]
    doc_id: str
    source: str  # file name
    title: str
    text: str
    start: int  # character offsets of `text` in the document
    end: int
    score: float
    page: int | None = None
    section: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


class QuestionInput(TypedDict):
    """What a caller gives a pipeline."""

    question: str  # the user's question, as typed
    domain: NotRequired[str | None]  # the document collection / demo domain it is about


class PipelineState(QuestionInput, total=False):
    """Everything a pipeline produces. Each node returns the part it fills."""

    sources: list[Source]  # retrieved chunks, numbered as cited (RAG only)
    context: str  # the numbered passages the model was given: the chosen sentences of `sources`
    messages: list[dict[str, str]]  # the exact prompt sent to the model (OpenAI format), for 'show prompt'
    answer: str
    model: str  # the model id that answered
    queued_s: float  # seconds spent waiting for the shared local model before generating
    ttft_s: float | None  # from pipeline start to the first answer token
    total_s: float  # from pipeline start to the last token
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    notice: str | None  # a non-error remark shown with the answer (e.g. 'not fine-tuned yet')
    found_in: list[int]  # sources holding the answer's words, by matching (not the model's citation)
