"""One factory from a pipeline's endpoint settings to a LangChain chat model (or a raw OpenAI client).

Every model is reached through an OpenAI-compatible endpoint: the embedded llama.cpp server,
OpenAI, vLLM, Ollama or any compatible URL. Each endpoint has its own base URL and its own key
variable; a custom base URL never receives the OpenAI key (enforced by the settings).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from langchain.chat_models import init_chat_model
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from openai import DefaultAsyncHttpxClient, OpenAI
from pydantic import Field, SkipValidation

from triptych.llm.server import LocalModels, LoraRef, ModelServerError
from triptych.settings import EndpointConfig, Settings

# llama.cpp and most self-hosted servers ignore the key, but the OpenAI client requires one.
NO_KEY = "no-key-required"


class UsageCounter(Protocol):
    """Counts tokens for servers that send no usage while streaming."""

    def count(self, messages: list[dict[str, str]], answer: str) -> tuple[int | None, int]:
        """(prompt tokens, completion tokens)."""
        ...


@dataclass(frozen=True)
class ResolvedEndpoint:
    """A concrete endpoint: where to send requests, which model, with which key."""

    pipeline: str
    provider: str
    base_url: str
    model: str
    api_key: str | None
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    usage_counter: UsageCounter | None = None
    notice: str | None = None  # something the column should say (e.g. its server was restarted)

    @property
    def is_local(self) -> bool:
        """Served by the embedded llama.cpp server."""
        return self.provider == "local"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Estimated cost in USD from the configured prices (zero for the local model)."""
        return (prompt_tokens * self.price_in_per_1k + completion_tokens * self.price_out_per_1k) / 1000

    def describe(self) -> str:
        """`provider/model @ base_url`, safe to show (never the key)."""
        return f"{self.provider}/{self.model} @ {self.base_url}"


def resolve_endpoint(
    settings: Settings,
    pipeline: str,
    local: LocalModels | None = None,
    lora: LoraRef | None = None,
    *,
    model: str | None = None,
) -> ResolvedEndpoint:
    """Turn a pipeline's settings into a concrete endpoint, starting the local server if needed.

    `lora` is the adapter of a local fine-tuned model; the base model otherwise.
    `model` names another model on a remote endpoint than the configured one (a hosted `ft:...` model).
    Raises ConfigError (missing key) or ModelServerError (local server, unknown model name).
    """
    cfg: EndpointConfig = settings.endpoint(pipeline)
    api_key = settings.api_key(pipeline)
    common = {"price_in_per_1k": cfg.price_in_per_1k, "price_out_per_1k": cfg.price_out_per_1k}
    if cfg.is_local:
        if local is None:
            raise ModelServerError("the local model server is not available in this context")
        server = local.adapter(*lora) if lora else local.base()
        model = cfg.model_name or server.spec.alias
        server.require_model(model)
        return ResolvedEndpoint(
            pipeline, "local", server.base_url, model, None, usage_counter=server.token_counter(),
            notice=local.restart_notice(server.spec.alias), **common,
        )  # fmt: skip
    return ResolvedEndpoint(pipeline, cfg.provider.name, cfg.endpoint_url(), model or cfg.model_name, api_key, **common)


class CountingChatOpenAI(ChatOpenAI):
    """ChatOpenAI for a server that sends no token usage while streaming (the embedded llama.cpp one).

    Once the answer has streamed, `usage_counter` counts its tokens and a last, empty chunk carries
    them as `usage_metadata`, so the counts are on the message where a trace (LangSmith) reads them.
    """

    usage_counter: SkipValidation[UsageCounter] = Field(exclude=True)

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:  # fmt: skip
        text, reported = "", False
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            text += chunk.text
            reported = reported or bool(getattr(chunk.message, "usage_metadata", None))
            yield chunk
        if not reported:
            counted = await asyncio.to_thread(self.usage_counter.count, convert_to_openai_messages(messages), text)
            prompt, completion = counted
            if prompt is not None:  # without a chat template the prompt cannot be counted: report nothing
                usage = UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)
                yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))


def make_chat_model(
    endpoint: ResolvedEndpoint,
    settings: Settings,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    **kwargs: object,
) -> ChatOpenAI:
    """A streaming `ChatOpenAI` for the endpoint that reports token usage on the answer's message.

    Each model gets its own async HTTP client: langchain-openai otherwise shares one per base URL
    across the process, bound to the event loop it first ran on, and a later loop fails with
    "Event loop is closed".
    """
    kwargs.setdefault("http_async_client", DefaultAsyncHttpxClient(timeout=settings.request_timeout_s))
    limit = max_tokens if max_tokens is not None else settings.max_tokens
    if endpoint.provider != "openai":
        # langchain-openai sends the limit as `max_completion_tokens`, which OpenAI reads but llama.cpp's
        # server (and other OpenAI-compatible servers) ignore: without `max_tokens` a small model that
        # loops writes until its context is full (1,454 tokens and 21 s for one RAG answer, measured).
        extra = dict(kwargs.pop("extra_body", None) or {})  # type: ignore[call-overload]
        kwargs["extra_body"] = {"max_tokens": limit, **extra}
    params: dict[str, Any] = {
        "model": endpoint.model,
        "base_url": endpoint.base_url,
        "api_key": endpoint.api_key or NO_KEY,
        "max_tokens": limit,
        "temperature": temperature if temperature is not None else settings.temperature,
        "timeout": settings.request_timeout_s,
        "max_retries": 1,
        "streaming": True,
        "stream_usage": True,
        **kwargs,
    }
    if endpoint.usage_counter is not None:
        return CountingChatOpenAI(usage_counter=endpoint.usage_counter, **params)
    # Every other endpoint speaks the OpenAI API (OpenAI, vLLM, Ollama, any compatible server):
    # LangChain's own initialiser builds its chat model.
    return init_chat_model(model_provider="openai", **params)  # type: ignore[return-value]


def make_openai_client(endpoint: ResolvedEndpoint, settings: Settings, **kwargs: object) -> OpenAI:
    """A raw `openai` client for the endpoint."""
    return OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or NO_KEY,
        timeout=settings.request_timeout_s,
        max_retries=1,
        **kwargs,  # type: ignore[arg-type]
    )
