"""Stream one chat completion and measure it: time to first token, total time, token usage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, convert_to_openai_messages

from triptych.llm.factory import UsageCounter


@dataclass
class Generation:
    """One measured answer. Times are seconds from `started_at` (see `stream_answer`)."""

    answer: str
    model: str
    ttft_s: float | None
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None = None  # as the endpoint reported it: "stop", "length", ... (None: not reported)

    @property
    def cut_short(self) -> str | None:
        """Why the answer is incomplete, or None when the model finished it."""
        return cut_short_reason(self.finish_reason)

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def cut_short_reason(finish_reason: str | None) -> str | None:
    """A line saying why an answer with this finish reason is incomplete; None for a finished one."""
    if finish_reason in ("stop", "eos", "tool_calls", "function_call"):
        return None
    if finish_reason == "length":
        return "cut short at the token limit (TRIPTYCH_MAX_TOKENS)"
    if finish_reason is None:
        return "cut short: the stream ended without saying it was finished (the server stopped it)"
    return f"cut short: the endpoint stopped it ({finish_reason})"


async def stream_answer(
    chat: BaseChatModel,
    messages: Sequence[BaseMessage],
    model: str,
    on_token: Callable[[str], None] | None = None,
    usage_counter: UsageCounter | None = None,
    started_at: float | None = None,
    stop: Sequence[str] | None = None,
) -> Generation:
    """Stream `messages` through `chat`, calling `on_token` for each piece of text as it arrives.

    `started_at` (a `time.perf_counter()` value) is where the clock starts: the pipeline's start,
    so that time to first token includes retrieval and queueing, as a user experiences it.
    Token counts come from the endpoint's usage report; where it sends none while streaming (the
    embedded llama.cpp server), `usage_counter` counts them once the answer is complete.
    The endpoint's `finish_reason` is kept: an answer it did not finish is never taken as complete.
    `stop`: strings that end the answer where the endpoint meets them (not included in it).
    """
    start = time.perf_counter() if started_at is None else started_at
    ttft: float | None = None
    merged: AIMessageChunk | None = None
    async for chunk in chat.astream(list(messages), stop=list(stop) if stop else None):
        assert isinstance(chunk, AIMessageChunk)
        text = chunk.text
        if text and ttft is None:
            ttft = time.perf_counter() - start
        if text and on_token is not None:
            on_token(text)
        merged = chunk if merged is None else merged + chunk
    latency = time.perf_counter() - start
    text = merged.text if merged is not None else ""
    usage = merged.usage_metadata if merged is not None else None
    finish = merged.response_metadata.get("finish_reason") if merged is not None else None
    if usage:
        prompt_tokens, completion_tokens = usage["input_tokens"], usage["output_tokens"]
    elif usage_counter is not None:
        openai_messages = convert_to_openai_messages(list(messages))
        prompt_tokens, completion_tokens = await asyncio.to_thread(usage_counter.count, openai_messages, text)
    else:
        prompt_tokens = completion_tokens = None
    return Generation(
        answer=text.strip(),
        model=model,
        ttft_s=ttft,
        latency_s=latency,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason=finish,
    )
