"""langgraph.json points at real graphs, and a served graph answers through the comparison runner."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

from graphs import served
from graphs.compare import Comparison
from graphs.context import PipelineContext
from graphs.registry import PIPELINES
from tests.fakes import ScriptedChat
from triptych.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_langgraph_json_lists_every_pipeline_as_a_compiled_graph() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    assert set(config["graphs"]) == set(PIPELINES)
    for ref in config["graphs"].values():
        path, attr = ref.split(":")
        module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, attr), CompiledStateGraph)


def test_served_graph_returns_the_pipeline_result(monkeypatch) -> None:
    def prepare(spec, domain, gate):
        return PipelineContext(chat=ScriptedChat(reply="Axial tilt."), model="fake")

    runner = Comparison(Settings(_env_file=None), prepare=prepare)  # type: ignore[call-arg]
    monkeypatch.setattr(served, "comparison", lambda: runner)
    out = asyncio.run(served.prompt.ainvoke({"question": "Why seasons?"}))
    assert out["result"]["answer"] == "Axial tilt."
    assert out["result"]["pipeline"] == "prompt" and out["result"]["error"] is None
