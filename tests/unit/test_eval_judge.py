"""The LLM judge at the HTTP level: which URL and key, what it sends, how it reads the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from triptych.evaluate.judge import UNANSWERABLE, Judge, judge_endpoint, parse_verdict
from triptych.settings import ConfigError, load_settings


class FakeJudgeServer:
    """An OpenAI-shaped chat endpoint that answers with a fixed reply and records requests."""

    def __init__(self, reply: str, status: int = 200) -> None:
        self.reply, self.status, self.requests = reply, status, []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx2.Response(self.status, json={"error": {"message": "overloaded", "type": "server_error"}})
        body = json.loads(request.content)
        return httpx2.Response(200, json={
            "id": "chatcmpl-j", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.reply}}],
            "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100},
        })  # fmt: skip

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))


def test_judge_is_off_by_default(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.judge_model is None
    assert judge_endpoint(settings) is None and Judge.from_settings(settings) is None


def test_judge_grades_through_an_openai_compatible_endpoint(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_JUDGE_MODEL", "compatible/big-judge")
    monkeypatch.setenv("TRIPTYCH_JUDGE_BASE_URL", "http://judge-box:8000/v1/")
    monkeypatch.setenv("TRIPTYCH_JUDGE_API_KEY_ENV", "JUDGE_KEY")
    monkeypatch.setenv("JUDGE_KEY", "judge-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    server = FakeJudgeServer('Sure: {"verdict": "partially", "reason": "Gives the day but not the time."}')
    judge = Judge.from_settings(load_settings(), http_client=server.client())
    verdict = judge.grade("When is the anchor day?", ["Tuesday", "Tuesdays"], "Tuesday, I think.")
    assert verdict.to_dict() == {"verdict": "partially", "reason": "Gives the day but not the time."}
    (request,) = server.requests
    assert str(request.url) == "http://judge-box:8000/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer judge-secret"
    body = json.loads(request.content)
    assert body["model"] == "big-judge" and body["temperature"] == 0
    user = body["messages"][1]["content"]
    assert "When is the anchor day?" in user and "- Tuesday\n- Tuesdays" in user and "Tuesday, I think." in user

    judge.grade("How much is the Christmas bonus?", [], "I don't know.")
    assert UNANSWERABLE in json.loads(server.requests[1].content)["messages"][1]["content"]


def test_judge_failures_are_recorded_not_raised(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_JUDGE_MODEL", "ollama/llama3.1")
    settings = load_settings()
    down = Judge.from_settings(settings, http_client=FakeJudgeServer("", status=503).client())
    assert down.grade("q", ["a"], "a").verdict == "error"
    garbled = Judge.from_settings(settings, http_client=FakeJudgeServer("looks right to me").client())
    verdict = garbled.grade("q", ["a"], "a")
    assert verdict.verdict == "error" and "looks right to me" in verdict.reason


def test_judge_configuration_errors_name_the_variable(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_JUDGE_MODEL", "local")
    with pytest.raises(ConfigError, match="TRIPTYCH_JUDGE_MODEL"):
        judge_endpoint(load_settings())
    monkeypatch.setenv("TRIPTYCH_JUDGE_MODEL", "compatible/x")
    with pytest.raises(ConfigError, match="TRIPTYCH_JUDGE_BASE_URL"):
        judge_endpoint(load_settings())
    # the OpenAI key never goes to another host
    monkeypatch.setenv("TRIPTYCH_JUDGE_BASE_URL", "http://judge-box/v1")
    monkeypatch.setenv("TRIPTYCH_JUDGE_API_KEY_ENV", "OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="only ever sent to api.openai.com"):
        judge_endpoint(load_settings())
    monkeypatch.setenv("TRIPTYCH_JUDGE_MODEL", "openai/gpt-4o-mini")
    monkeypatch.delenv("TRIPTYCH_JUDGE_BASE_URL")
    monkeypatch.delenv("TRIPTYCH_JUDGE_API_KEY_ENV")
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        Judge.from_settings(load_settings())


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ('{"verdict": "correct", "reason": "same fact"}', "correct"),
        ('```json\n{"verdict": "Partial", "reason": "half"}\n```', "partially"),
        ('{"verdict": "WRONG", "reason": "other date"}', "wrong"),
        ('{"verdict": "maybe"}', "error"),
        ("no json", "error"),
    ],
)
def test_parse_verdict(reply: str, verdict: str) -> None:
    assert parse_verdict(reply).verdict == verdict
