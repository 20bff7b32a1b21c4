"""Scripted fakes for unit tests: a chat model that streams given replies and records its calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from triptych.retrieval import RetrievedChunk


class ScriptedChat(BaseChatModel):
    """Streams `reply` word by word (with `delay` between words), or raises `error`; records prompts.

    The stream ends as an OpenAI-compatible one does, with `finish_reason` ("stop", "length" or None).
    """

    reply: str = "ok"
    delay: float = 0.0
    error: BaseException | None = None
    usage: tuple[int, int] | None = (10, 3)
    finish_reason: str | None = "stop"
    calls: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        if self.error:
            raise self.error
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("use the async path")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls.append(list(messages))
        if self.error:
            raise self.error
        reply = self.reply
        for end in stop or ():  # the endpoint ends the answer where it meets a stop string, as servers do
            reply = reply.split(end, 1)[0]
        words = reply.split(" ")
        for i, word in enumerate(words):
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else " " + word))
        usage = None
        if self.usage:
            p, c = self.usage
            usage = {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}
        # the last chunk says why the stream ended, as OpenAI-compatible servers do (None: it doesn't say)
        metadata = {"finish_reason": self.finish_reason} if self.finish_reason else {}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=metadata))


def make_chunk(
    chunk_id: str,
    doc_id: str,
    source: str,
    title: str,
    text: str,
    start: int,
    end: int,  # noqa: N802
    score: float,
) -> RetrievedChunk:
    """A retrieved chunk, as triptych.retrieval returns them."""
    return RetrievedChunk(
        chunk_id=chunk_id, doc_id=doc_id, source=source, title=title, text=text, start=start, end=end, score=score
    )


class FakeRetriever:
    """Returns fixed chunks (filtered by a minimum score) and records queries."""

    def __init__(self, chunks: list[RetrievedChunk], min_score: float = 0.0) -> None:
        self.chunks, self.min_score, self.queries = chunks, min_score, []

    def search(self, query: str, k: int | None = None) -> list[RetrievedChunk]:
        self.queries.append(query)
        hits = [c for c in self.chunks if c.score >= self.min_score]
        return hits[: k or len(hits)]


def assert_consistent(index: Any) -> None:
    """Every catalog record's chunk count is what is stored of its version, and nothing else is stored."""
    records = index.documents()
    metas = index.chunks.get(include=["metadatas"])["metadatas"]
    stored = {r.doc_id: sum(m["doc_id"] == r.doc_id and m["version"] == r.version for m in metas) for r in records}
    assert stored == {r.doc_id: r.chunks for r in records}
    assert len(metas) == sum(r.chunks for r in records)
