"""A local answer's CPU seconds: the servers' CPU time read around its generation on a one-slot gate (fake meter)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from graphs import prompt, rag
from graphs.compare import Comparison
from graphs.context import PipelineContext
from graphs.registry import PIPELINES, PipelineSpec
from graphs.result import PipelineResult
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from tests.unit.test_hybrid_column import FakeLocalModels
from triptych.history import list_history, save_comparison
from triptych.llm.cpu import cpu_used, process_cpu_seconds
from triptych.llm.queue import ModelQueue
from triptych.settings import Settings


class FakeMeter:
    """Fake server processes: pid 101 has used `per_read` more CPU seconds at each reading; pid 102 nothing.

    Records how many slots of `gate` were held at each reading.
    """

    def __init__(self, per_read: float = 0.42, gate: ModelQueue | None = None) -> None:
        self.per_read, self.gate = per_read, gate
        self.reads = 0
        self.held: list[int] = []

    def __call__(self) -> dict[int, float]:
        if self.gate is not None:
            self.held.append(self.gate.held)
        used = {101: 5.0 + self.per_read * self.reads, 102: 1.0}
        self.reads += 1
        return used


def ask(graph, context: PipelineContext, question: str = "How much leave?") -> dict:
    return asyncio.run(graph.ainvoke({"question": question, "domain": "hr_handbook"}, context=context))


def test_the_difference_counts_only_processes_read_both_times() -> None:
    before = {101: 5.0, 102: 1.0, 103: 7.0}  # 103 is stopped before the second reading
    after = {101: 5.84, 102: 1.0, 104: 3.5}  # 104 started meanwhile: its model load is not the answer's
    assert cpu_used(before, after) == pytest.approx(0.84)
    assert cpu_used({}, after) == 0.0


def test_this_process_has_used_cpu_and_a_gone_one_is_left_out() -> None:
    used = process_cpu_seconds([os.getpid(), 2**22 + 12345])  # beyond Linux's pid_max: no such process
    assert list(used) == [os.getpid()] and used[os.getpid()] > 0


def test_with_one_slot_the_answer_carries_the_cpu_seconds_read_around_its_generation() -> None:
    gate = ModelQueue(1)
    meter = FakeMeter(per_read=0.84, gate=gate)
    state = ask(prompt.compile(), PipelineContext(chat=ScriptedChat(reply="25 days."), model="local", gate=gate,
                                                  cpu_meter=meter))  # fmt: skip
    assert state["cpu_s"] == pytest.approx(0.84)
    assert meter.reads == 2 and meter.held == [1, 1]  # both readings while the answer held the gate
    assert gate.held == 0


def test_with_two_slots_the_cpu_time_is_not_attributable() -> None:
    meter = FakeMeter()
    state = ask(prompt.compile(), PipelineContext(chat=ScriptedChat(reply="25 days."), model="local",
                                                  gate=ModelQueue(2), cpu_meter=meter))  # fmt: skip
    assert state["answer"] == "25 days." and state["cpu_s"] is None and meter.reads == 0


def test_a_remote_endpoint_has_no_cpu_seconds() -> None:
    state = ask(prompt.compile(), PipelineContext(chat=ScriptedChat(reply="25 days."), model="gpt-4o-mini"))
    assert state["cpu_s"] is None


def test_an_answer_given_without_the_model_used_no_cpu_of_it() -> None:
    meter = FakeMeter()
    retriever = FakeRetriever([make_chunk("c1", "d", "d.md", "D", "text", 0, 4, 0.1)], min_score=0.5)
    state = ask(rag.compile(), PipelineContext(chat=ScriptedChat(), model="local", retriever=retriever,
                                               gate=ModelQueue(1), cpu_meter=meter))  # fmt: skip
    assert state["answer"] == "Not in the documents." and state["cpu_s"] == 0.0 and meter.reads == 0


def test_local_answers_queued_one_after_the_other_each_get_their_own_cpu_seconds_and_the_history_keeps_them(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, local_concurrency=1)  # type: ignore[call-arg]
    runner = Comparison(settings, prepare=lambda spec, domain, gate: PipelineContext(
        chat=ScriptedChat(reply="a b c", delay=0.01), model="local", gate=gate, cpu_meter=meter,
        retriever=FakeRetriever([make_chunk("c1", "d", "d.md", "D", "text", 0, 4, 0.9)])))  # fmt: skip
    meter = FakeMeter(per_read=0.5, gate=runner.queue)
    results = runner.run("q?", "hr", ["prompt", "rag"])
    assert {p: r.cpu_s for p, r in results.items()} == {"prompt": pytest.approx(0.5), "rag": pytest.approx(0.5)}
    assert meter.held == [1, 1, 1, 1]

    record = save_comparison(settings, "q?", "hr", results)
    (again,) = list_history(settings)
    assert again.results["rag"].cpu_s == pytest.approx(0.5) and again.results == record.results


def test_records_made_before_cpu_seconds_were_kept_still_load(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    record = save_comparison(settings, "q?", "hr", {"prompt": PipelineResult("prompt", "Prompt", answer="x")})
    path = tmp_path / "history" / f"{record.id}.json"
    raw = json.loads(path.read_text())
    del raw["results"]["prompt"]["cpu_s"]
    path.write_text(json.dumps(raw))
    (old,) = list_history(settings)
    assert old.results["prompt"].cpu_s is None and old.results["prompt"].answer == "x"


def test_an_evaluation_keeps_each_answers_cpu_seconds(tmp_path: Path) -> None:
    from triptych.evaluate.runner import Evaluation
    from triptych.evaluate.store import ANSWERS
    from triptych.qa import QARecord

    settings = Settings(_env_file=None, data_dir=tmp_path, local_concurrency=1)  # type: ignore[call-arg]
    meter = FakeMeter(per_read=0.25)
    runner = Comparison(settings, prepare=lambda spec, domain, gate: PipelineContext(
        chat=ScriptedChat(reply="Tuesday."), model="local", gate=gate, cpu_meter=meter))  # fmt: skip
    outcome = Evaluation(runner).run("hr", [QARecord("q1", "Which weekday?", "Tuesday", split="test")], ["prompt"])
    (row,) = [json.loads(line) for line in (outcome.run.path / ANSWERS).read_text().splitlines()]
    assert row["status"] == "ok" and row["cpu_s"] == pytest.approx(0.25)


def test_a_local_pipeline_is_metered_by_its_servers_and_a_remote_one_is_not(monkeypatch, tmp_path: Path) -> None:
    local = FakeLocalModels()
    spec: PipelineSpec = PIPELINES["prompt"]
    on_local = spec.build_context(Settings(_env_file=None, data_dir=tmp_path), None, local=local)  # type: ignore[call-arg]
    assert on_local.cpu_meter == local.cpu_seconds
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    remote = Settings(_env_file=None, data_dir=tmp_path, prompt={"model": "openai/gpt-4o-mini"})  # type: ignore[call-arg]
    assert spec.build_context(remote, None, local=local).cpu_meter is None
