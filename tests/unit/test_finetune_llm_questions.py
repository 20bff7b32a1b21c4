"""Training questions written by a capable LLM, against a real local HTTP server speaking the OpenAI chat API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from triptych.finetune.dataset import TrainingSetError
from triptych.finetune.llm_questions import QuestionWriter, grounded, llm_generated_examples, parse_pairs, passages
from triptych.finetune.runs import training_set_for
from triptych.settings import ConfigError, load_settings

LEAVE = (
    "# Annual leave\n\nFull-time staff accrue 2.25 days of paid leave per month of employment.\n\n"
    "Up to 5 unused days may be carried into the next year; they lapse on 31 March."
)
TRAVEL = "Travel must be booked through the Wayfarer portal at least 14 days before departure."


class ChatServer:
    """An OpenAI-shaped /v1/chat/completions on 127.0.0.1 whose reply is chosen per request by `reply`."""

    def __init__(self, reply) -> None:  # type: ignore[no-untyped-def]
        self.reply, self.requests = reply, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, content = outer.reply(body["messages"][1]["content"])
                payload = (
                    {"id": "chatcmpl-q", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 90, "completion_tokens": 40, "total_tokens": 130}}
                    if status == 200 else {"error": {"message": content, "type": "server_error"}}
                )  # fmt: skip
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def pairs_reply(*pairs: tuple[str, str]) -> str:
    return "```json\n" + json.dumps({"pairs": [{"question": q, "answer": a} for q, a in pairs]}) + "\n```"


def by_passage(user: str) -> tuple[int, str]:
    """Grounded pairs for the leave passage, one invented answer among them; a 503 for the travel one."""
    if "2.25 days" in user:
        return 200, pairs_reply(
            ("How much paid leave do full-time staff accrue per month?", "2.25 days"),
            ("When do carried-over leave days lapse?", "31 March"),
            ("How many leave days can be sold back?", "10 days"),  # not in the passage
        )
    return 503, "overloaded"


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer(by_passage)
    yield server
    server.close()


@pytest.fixture
def qa_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch, chat_server: ChatServer) -> Path:
    docs = clean_env / "corpora" / "acme" / "docs"
    docs.mkdir(parents=True)
    (docs / "leave.md").write_text(LEAVE)
    (docs / "travel.md").write_text(TRAVEL)
    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(clean_env / "corpora"))
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_MODEL", "compatible/writer-70b")
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_BASE_URL", chat_server.url)
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_API_KEY_ENV", "WRITER_KEY")
    monkeypatch.setenv("WRITER_KEY", "writer-secret")
    return clean_env


def test_passages_break_at_paragraphs_and_long_ones_at_sentences() -> None:
    text = "First para.\n\nSecond para.\n\n" + "A long sentence here. " * 20
    parts = passages(text, max_chars=120)
    assert parts[0] == "First para.\n\nSecond para."
    assert all(len(p) <= 120 for p in parts) and all(p.endswith(".") for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_replies_are_read_leniently_and_answers_must_be_quoted() -> None:
    assert parse_pairs(pairs_reply(("Q?", "A"))) == [("Q?", "A")]
    assert parse_pairs('{"pairs": [{"question": "Q?"}, {"question": " x ", "answer": ""}, 3]}') == []
    assert parse_pairs("I cannot help with that.") == [] and parse_pairs("{not json}") == []
    assert grounded("2.25 Days", LEAVE) and grounded("31 March.", LEAVE)
    assert not grounded("10 days", LEAVE) and not grounded("", LEAVE)
    assert not grounded("5 unused", "Up to 15 unused days")  # whole words only


def test_training_set_from_the_question_writer_keeps_grounded_pairs(qa_env: Path, chat_server: ChatServer) -> None:
    status: list[str] = []
    ts = training_set_for(load_settings(), "acme", on_status=status.append)
    assert [(e.question, e.answer, e.kind) for e in ts.examples] == [
        ("How much paid leave do full-time staff accrue per month?", "2.25 days", "llm-generated"),
        ("When do carried-over leave days lapse?", "31 March", "llm-generated"),
    ]
    assert ts.generator == {"kind": "llm", "model": "writer-70b", "passages": 2, "proposed": 3, "kept": 2,
                            "ungrounded": 1, "failed": 1, "errors": [ts.generator["errors"][0]]}  # fmt: skip
    assert "travel.md" in ts.generator["errors"][0] and "InternalServerError" in ts.generator["errors"][0]
    assert status[-1].startswith("question writer: passage 2/2, 2 pairs kept")
    first = chat_server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer writer-secret"
    assert first["body"]["model"] == "writer-70b" and first["body"]["temperature"] == 0
    assert "Document: Annual leave" in first["body"]["messages"][1]["content"]


def test_a_resumed_run_reuses_its_training_file(qa_env: Path, chat_server: ChatServer) -> None:
    settings = load_settings()
    path = training_set_for(settings, "acme").write(qa_env / "run" / "training.jsonl")
    asked = len(chat_server.requests)
    again = training_set_for(settings, "acme", reuse=path)
    assert len(chat_server.requests) == asked
    assert [(e.question, e.answer) for e in again.examples] == [
        ("How much paid leave do full-time staff accrue per month?", "2.25 days"),
        ("When do carried-over leave days lapse?", "31 March"),
    ]


def test_a_writer_that_always_fails_names_the_fix(qa_env: Path, chat_server: ChatServer) -> None:
    chat_server.reply = lambda _user: (503, "overloaded")
    with pytest.raises(TrainingSetError, match="failed on every passage.*TRIPTYCH_FINETUNE_QA_MODEL"):
        training_set_for(load_settings(), "acme")
    chat_server.reply = lambda _user: (200, pairs_reply(("Who is the CEO?", "Ada Lovelace")))
    with pytest.raises(TrainingSetError, match="proposed no pair whose answer is quoted"):
        training_set_for(load_settings(), "acme")


def test_without_a_writer_the_extractive_generator_is_used(qa_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIPTYCH_FINETUNE_QA_MODEL")
    ts = training_set_for(load_settings(), "acme")
    assert ts.generator == {"kind": "extractive"} and {e.kind for e in ts.examples} == {"generated"}


def test_writer_configuration_errors_name_the_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert QuestionWriter.from_settings(load_settings()) is None
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_MODEL", "local")
    with pytest.raises(ConfigError, match="TRIPTYCH_FINETUNE_QA_MODEL.*too small"):
        QuestionWriter.from_settings(load_settings())
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_MODEL", "compatible/x")
    with pytest.raises(ConfigError, match="TRIPTYCH_FINETUNE_QA_BASE_URL"):
        QuestionWriter.from_settings(load_settings())
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TRIPTYCH_FINETUNE_QA_BASE_URL", "http://elsewhere:8000/v1")
    with pytest.raises(ConfigError, match="only ever sent to api.openai.com"):
        QuestionWriter.from_settings(load_settings())
    monkeypatch.delenv("TRIPTYCH_FINETUNE_QA_BASE_URL")
    with pytest.raises(ConfigError, match="needs an API key: set OPENAI_API_KEY"):
        QuestionWriter.from_settings(load_settings())


def test_generation_stops_at_the_limit() -> None:
    class Writer:
        def pairs(self, title: str, passage: str) -> list[tuple[str, str]]:
            return [(f"What does {passage[:20]} say?", passage.split()[0])]

    docs = [(f"d{i}.md", f"Doc {i}", f"Word{i} starts this passage number {i}.") for i in range(10)]
    examples, stats = llm_generated_examples(docs, Writer(), limit=4)  # type: ignore[arg-type]
    assert len(examples) == 4 and stats.passages == 4 and stats.kept == 4
