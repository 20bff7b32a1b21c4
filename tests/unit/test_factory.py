"""The chat-model factory at the HTTP level: which URL, which key, what comes back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx2
import pytest
from langchain_core.messages import HumanMessage

from triptych.llm.factory import NO_KEY, ResolvedEndpoint, make_chat_model, resolve_endpoint
from triptych.llm.generate import stream_answer
from triptych.llm.server import ModelServerError
from triptych.settings import ConfigError, load_settings


class RecordingOpenAI:
    """An OpenAI-shaped HTTP double that records each request."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=self._sse(body))
        return httpx2.Response(200, json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Axial tilt."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        })  # fmt: skip

    @staticmethod
    def _sse(body: dict) -> bytes:
        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
            obj = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                obj["usage"] = usage
            return f"data: {json.dumps(obj)}\n\n"

        events = [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Axial"}),
            chunk({"content": " tilt."}),
            chunk({}, "stop"),
        ]
        if body.get("stream_options", {}).get("include_usage"):
            events.append(chunk({}, usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}))
        return ("".join(events) + "data: [DONE]\n\n").encode()

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))

    def async_client(self) -> httpx2.AsyncClient:
        async def handle(request: httpx2.Request) -> httpx2.Response:
            return self.handler(request)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))


@pytest.fixture
def double() -> RecordingOpenAI:
    return RecordingOpenAI()


def test_openai_endpoint_gets_the_openai_key(clean_env: Path, monkeypatch, double) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    settings = load_settings()
    endpoint = resolve_endpoint(settings, "prompt")
    chat = make_chat_model(endpoint, settings, http_client=double.client())
    reply = chat.invoke([HumanMessage("Why are there seasons?")])
    assert reply.text == "Axial tilt."
    req = double.requests[0]
    assert str(req.url) == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-openai-secret"
    assert json.loads(req.content)["model"] == "gpt-4o-mini"


def test_custom_url_never_receives_the_openai_key(clean_env: Path, monkeypatch, double) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "vllm/qwen")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", "http://gpu-box:8000/v1/")
    settings = load_settings()
    endpoint = resolve_endpoint(settings, "rag")
    assert endpoint.api_key is None
    make_chat_model(endpoint, settings, http_client=double.client()).invoke([HumanMessage("hi")])
    req = double.requests[0]
    assert str(req.url) == "http://gpu-box:8000/v1/chat/completions"
    assert "sk-openai-secret" not in req.headers["authorization"]
    assert req.headers["authorization"] == f"Bearer {NO_KEY}"


def test_the_answer_length_limit_reaches_compatible_servers_as_max_tokens(clean_env, monkeypatch, double) -> None:
    """llama.cpp's server (and other compatible ones) read `max_tokens`, not `max_completion_tokens`."""
    monkeypatch.setenv("TRIPTYCH_MAX_TOKENS", "64")
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "compatible/small")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    settings = load_settings()
    for pipeline in ("rag", "prompt"):
        make_chat_model(resolve_endpoint(settings, pipeline), settings, http_client=double.client()).invoke(
            [HumanMessage("hi")]
        )
    compatible, hosted = (json.loads(r.content) for r in double.requests)
    assert compatible["max_tokens"] == 64 and compatible["max_completion_tokens"] == 64
    assert hosted["max_completion_tokens"] == 64 and "max_tokens" not in hosted  # OpenAI's own name only


def test_custom_url_with_its_own_key_variable(clean_env: Path, monkeypatch, double) -> None:
    monkeypatch.setenv("TRIPTYCH_FINETUNED__MODEL", "compatible/my-ft")
    monkeypatch.setenv("TRIPTYCH_FINETUNED__BASE_URL", "https://llm.internal/v1")
    monkeypatch.setenv("TRIPTYCH_FINETUNED__API_KEY_ENV", "INTERNAL_LLM_KEY")
    monkeypatch.setenv("INTERNAL_LLM_KEY", "internal-123")
    settings = load_settings()
    endpoint = resolve_endpoint(settings, "finetuned")
    make_chat_model(endpoint, settings, http_client=double.client()).invoke([HumanMessage("hi")])
    assert double.requests[0].headers["authorization"] == "Bearer internal-123"


def test_missing_key_fails_before_any_request(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "openai/gpt-4o-mini")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve_endpoint(load_settings(), "prompt")


def test_streaming_measures_ttft_and_usage(clean_env: Path, monkeypatch, double) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "ollama/llama3.2")
    monkeypatch.setenv("TRIPTYCH_PROMPT__PRICE_IN_PER_1K", "0.5")
    monkeypatch.setenv("TRIPTYCH_PROMPT__PRICE_OUT_PER_1K", "1.5")
    settings = load_settings()
    endpoint = resolve_endpoint(settings, "prompt")
    assert endpoint.base_url == "http://127.0.0.1:11434/v1"
    tokens: list[str] = []
    chat = make_chat_model(endpoint, settings, http_async_client=double.async_client())
    result = asyncio.run(stream_answer(chat, [HumanMessage("hi")], endpoint.model, on_token=tokens.append))
    assert tokens == ["Axial", " tilt."]
    assert result.answer == "Axial tilt."
    assert result.ttft_s is not None and 0 <= result.ttft_s <= result.latency_s
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    body = json.loads(double.requests[0].content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert endpoint.cost(12, 3) == pytest.approx((12 * 0.5 + 3 * 1.5) / 1000)


def test_local_endpoint_without_server_context_is_an_error(clean_env: Path) -> None:
    with pytest.raises(ModelServerError):
        resolve_endpoint(load_settings(), "prompt", local=None)


class NoUsageOpenAI(RecordingOpenAI):
    """Like the embedded llama.cpp server: streams no usage, whatever `stream_options` asks."""

    @staticmethod
    def _sse(body: dict) -> bytes:
        return RecordingOpenAI._sse({**body, "stream_options": {}})


def test_counted_usage_of_a_local_model_is_reported_on_the_message(clean_env: Path) -> None:
    counted: list[tuple[list, str]] = []

    class Counter:
        def count(self, messages: list[dict[str, str]], answer: str) -> tuple[int | None, int]:
            counted.append((messages, answer))
            return 7, 2

    endpoint = ResolvedEndpoint("prompt", "local", "http://127.0.0.1:9/v1", "m", None, usage_counter=Counter())
    chat = make_chat_model(endpoint, load_settings(), http_async_client=NoUsageOpenAI().async_client())

    async def answer():  # noqa: ANN202
        merged = None
        async for chunk in chat.astream([HumanMessage("hi")]):
            merged = chunk if merged is None else merged + chunk
        return merged

    message = asyncio.run(answer())
    assert message.text == "Axial tilt."
    assert message.usage_metadata == {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert counted == [([{"role": "user", "content": "hi"}], "Axial tilt.")]
