"""Which embedded servers run: one per model, a superseded adapter's stopped (processes faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from triptych.llm import server as server_mod
from triptych.llm.server import LocalModels, LocalModelServer
from triptych.settings import Settings


@pytest.fixture
def fake_processes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Servers that 'run' without a process; counts starts and stops per alias."""
    counts: dict[str, int] = {}
    running: set[int] = set()

    def start(self: LocalModelServer) -> LocalModelServer:
        counts[f"start {self.spec.alias}"] = counts.get(f"start {self.spec.alias}", 0) + 1
        running.add(id(self))
        return self

    def stop(self: LocalModelServer, timeout_s: float = 10.0) -> None:
        counts[f"stop {self.spec.alias}"] = counts.get(f"stop {self.spec.alias}", 0) + 1
        running.discard(id(self))

    monkeypatch.setattr(LocalModelServer, "start", start)
    monkeypatch.setattr(LocalModelServer, "stop", stop)
    monkeypatch.setattr(LocalModelServer, "is_running", lambda self: id(self) in running)
    monkeypatch.setattr(server_mod, "bundled_model_path", lambda: Path("base.gguf"))
    return counts


def test_a_newer_adapter_of_a_domain_stops_the_server_of_the_old_one(fake_processes: dict[str, int]) -> None:
    models = LocalModels(Settings(_env_file=None))  # type: ignore[call-arg]
    old = models.adapter("ft-hr-run1", Path("run1/adapter.gguf"), family="ft-hr")
    other = models.adapter("ft-legal-run7", Path("run7/adapter.gguf"), family="ft-legal")
    new = models.adapter("ft-hr-run2", Path("run2/adapter.gguf"), family="ft-hr")
    assert not old.is_running() and new.is_running() and other.is_running()
    assert set(models.running()) == {"ft-legal-run7", "ft-hr-run2"}
    assert fake_processes["stop ft-hr-run1"] == 1 and "stop ft-legal-run7" not in fake_processes
    # asking for the active adapter again reuses its server
    assert models.adapter("ft-hr-run2", Path("run2/adapter.gguf"), family="ft-hr") is new
    assert fake_processes["start ft-hr-run2"] == 1


def test_every_comparison_of_the_process_gets_the_same_queue() -> None:
    models = LocalModels(Settings(_env_file=None, local_concurrency=2))  # type: ignore[call-arg]
    from graphs.compare import Comparison

    a, b = Comparison(models.settings, models), Comparison(models.settings, models)
    assert a.queue is b.queue is models.queue and models.queue.slots == 2
