"""A room at once, on the real embedded model: several askers, abandoned questions, a server that died."""

from __future__ import annotations

import os
import signal
import threading
import time

import openai
import pytest

from graphs.compare import Comparison, Event
from triptych.llm.server import LocalModels
from triptych.settings import Settings

pytestmark = pytest.mark.integration

STORY = [{"role": "user", "content": "Write a long story about a robot who learns to paint."}]
COUNT = "Count from 1 to 200, separated by commas."


def stream_text(server_url: str, model: str, tokens: int, out: dict[str, object]) -> None:
    client = openai.OpenAI(base_url=server_url, api_key="unused", timeout=120)
    pieces, finish = 0, None
    for chunk in client.chat.completions.create(
        model=model, messages=STORY, max_tokens=tokens, temperature=0, stream=True
    ):
        if chunk.choices:
            pieces += bool(chunk.choices[0].delta.content)  # one piece per generated token
            finish = chunk.choices[0].finish_reason or finish
    out["pieces"], out["finish"] = pieces, finish


def test_a_second_request_never_cuts_a_running_stream_short(local_models: LocalModels) -> None:
    """llama.cpp's default ends a stream as soon as another request waits: the server must not be run so."""
    server = local_models.base()
    alone: dict[str, object] = {}
    stream_text(server.base_url, server.spec.alias, 60, alone)
    first: dict[str, object] = {}
    second: dict[str, object] = {}
    a = threading.Thread(target=stream_text, args=(server.base_url, server.spec.alias, 60, first))
    b = threading.Thread(target=stream_text, args=(server.base_url, server.spec.alias, 60, second))
    a.start()
    time.sleep(0.5)  # the first is streaming when the second arrives
    b.start()
    a.join(timeout=120)
    b.join(timeout=120)
    assert alone == {"pieces": 60, "finish": "length"}
    assert first == alone, "the first answer was cut short by the second request"
    assert second == alone


def test_two_sessions_asking_at_once_both_get_whole_answers(local_models: LocalModels) -> None:
    settings = Settings(_env_file=None, max_tokens=48)  # type: ignore[call-arg]
    results: dict[str, dict] = {}

    def session(name: str) -> None:
        results[name] = Comparison(settings, local_models).run("What is the capital of France?", None, ["prompt"])

    threads = [threading.Thread(target=session, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    answers = [results[n]["prompt"] for n in ("a", "b")]
    assert all(r.error is None and r.answer for r in answers), answers
    assert all(r.finish_reason in ("stop", "length") for r in answers), [r.finish_reason for r in answers]
    assert all(r.cut_short is None or "token limit" in r.cut_short for r in answers)
    assert max(r.queued_s for r in answers) > 0.1  # one waited for the other, in the process-wide queue


def test_an_abandoned_question_frees_the_model_for_the_next_within_a_second(local_models: LocalModels) -> None:
    settings = Settings(_env_file=None, max_tokens=400)  # type: ignore[call-arg]
    runner = Comparison(settings, local_models)
    alone = runner.run("What is the capital of France?", None, ["prompt"])["prompt"]

    class Rerun(Exception):
        """What Streamlit raises in the page when the viewer clicks while answers stream."""

    def on_event(event: Event) -> None:
        if event.kind == "token":
            raise Rerun

    with pytest.raises(Rerun):
        runner.run(COUNT, None, ["prompt"], on_event=on_event)  # would take about 20 s to finish
    nxt = runner.run("What is the capital of France?", None, ["prompt"])["prompt"]
    assert nxt.error is None and nxt.answer
    assert nxt.ttft_s < alone.ttft_s + 1.0, (nxt.ttft_s, alone.ttft_s)


def test_a_dead_server_is_started_again_and_the_column_says_so() -> None:
    settings = Settings(_env_file=None, max_tokens=16)  # type: ignore[call-arg]
    models = LocalModels(settings)
    try:
        server = models.base()
        os.kill(server.pid, signal.SIGKILL)
        server._proc.wait(timeout=10)  # noqa: SLF001 - wait for the kill to land
        result = Comparison(settings, models).run("What is the capital of France?", None, ["prompt"])["prompt"]
        assert result.error is None and result.answer
        assert result.notice == "the local model server had stopped (exit code -9) and was started again"
        again = Comparison(settings, models).run("What is the capital of France?", None, ["prompt"])["prompt"]
        assert again.notice is None  # said once
    finally:
        models.close()
