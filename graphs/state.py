"""The pipelines' state: a narrow input (the question) and the answer state every pipeline fills."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from triptych.documents.chunking import Chunk


class QuestionInput(TypedDict):
    """What a caller gives a pipeline."""

    question: str  # the user's question, as typed
    domain: NotRequired[str | None]  # the document collection / demo domain it is about


class Answer(TypedDict, total=False):
    """What answering fills in, by the model (`generate`) or without it (`fixed_answer`)."""

    answer: str
    model: str  # the model id that answered
    queued_s: float  # seconds spent waiting for the shared local model before generating
    ttft_s: float | None  # from pipeline start to the first answer token
    total_s: float  # from pipeline start to the last token
    cpu_s: float | None  # CPU seconds the local model servers used for it; None: remote, or not attributable
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    notice: str | None  # a non-error remark shown with the answer (e.g. 'not fine-tuned yet')
    finish_reason: str | None  # as the endpoint reported it ("stop", "length"); None for a fixed answer
    cut_short: str | None  # why the answer is incomplete (token limit, stream stopped); None when finished


class PipelineState(QuestionInput, Answer, total=False):
    """Everything a pipeline produces. Each node returns the part it fills.

    A finished run becomes a `graphs.result.PipelineResult`, which takes the fields it shares with
    this state by name (tests/unit/test_result.py checks that every answer field reaches it).
    """

    sources: list[Chunk]  # retrieved chunks, numbered `n` as cited (RAG only)
    context: str  # the numbered passages the model was given: the chosen sentences of `sources`
    messages: list[dict[str, str]]  # the exact prompt sent to the model (OpenAI format), for 'show prompt'
    found_in: list[int]  # sources holding the answer's words, by matching (not the model's citation)
