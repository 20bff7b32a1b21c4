"""The hybrid column (Fine-tuned + RAG): it answers with the domain's with-passages adapter when there is one,
says which kind of adapter answered, and joins the default columns once such an adapter exists."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from graphs.context import PipelineContext
from graphs.registry import DEFAULT_PIPELINES, PIPELINES, default_pipelines
from tests.fakes import FakeRetriever, ScriptedChat, make_chunk
from triptych import runstore
from triptych.finetune import registry
from triptych.settings import Settings

CHUNKS = [make_chunk("c1", "leave", "leave.md", "Leave policy", "Employees accrue 2.25 days a month.", 0, 35, 0.7)]


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]


def finished_run(s: Settings, run_id: str, mode: str | None, domain: str = "hr_handbook") -> None:
    """A done local run with an adapter file, as run_local leaves it (mode None: a run from before modes)."""
    (s.runs_dir / run_id).mkdir(parents=True)
    (s.runs_dir / run_id / registry.ADAPTER_FILE).write_bytes(b"GGUF")
    info = {"run_id": run_id, "domain": domain, "kind": "local", "status": "done"}
    runstore.write_json(s.runs_dir / run_id / registry.RUN_FILE, info | ({"mode": mode} if mode else {}))
    registry.activate(s, domain, run_id)


class FakeServer:
    def __init__(self, alias: str) -> None:
        self.spec = SimpleNamespace(alias=alias)
        self.base_url = "http://127.0.0.1:9/v1"

    def require_model(self, model: str) -> None:
        assert model == self.spec.alias

    def token_counter(self) -> None:
        return None


class FakeLocalModels:
    """Records which adapter each column asked the local server for."""

    def __init__(self) -> None:
        self.adapters: list[tuple[str, Path, str | None]] = []

    def adapter(self, alias: str, path: Path, family: str | None = None) -> FakeServer:
        self.adapters.append((alias, path, family))
        return FakeServer(alias)

    def base(self) -> FakeServer:
        return FakeServer("base")

    def restart_notice(self, alias: str) -> None:
        return None

    def cpu_seconds(self) -> dict[int, float]:
        return {}


def hybrid_context(s: Settings) -> tuple[PipelineContext, FakeLocalModels]:
    local = FakeLocalModels()
    spec = PIPELINES["finetuned_rag"]
    return spec.build_context(s, "hr_handbook", local=local, retriever_for=lambda d: FakeRetriever(CHUNKS)), local


def test_a_with_passages_run_becomes_the_hybrids_adapter_and_leaves_the_fine_tuned_columns_alone(tmp_path) -> None:
    s = settings(tmp_path)
    finished_run(s, "closed-1", "closed-book")
    finished_run(s, "reads-1", "with-passages")
    assert registry.active_adapter(s, "hr_handbook").run_id == "closed-1"
    assert registry.active_adapter(s, "hr_handbook", registry.WITH_PASSAGES).run_id == "reads-1"
    ctx, local = hybrid_context(s)
    assert [(a, p.parent.name) for a, p, _ in local.adapters] == [("ft-hr_handbook-reads-1", "reads-1")]
    assert ctx.adapter_mode == "with-passages"
    assert ctx.notice.startswith("with-passages adapter reads-1: trained to read retrieved passages")
    fine_tuned = PIPELINES["finetuned"].build_context(s, "hr_handbook", local=local)
    assert local.adapters[-1][1].parent.name == "closed-1" and fine_tuned.adapter_mode is None


def test_with_only_a_closed_book_adapter_the_hybrid_says_so_and_how_to_train_one_that_reads(tmp_path) -> None:
    s = settings(tmp_path)
    finished_run(s, "old-1", None)  # trained before modes existed: closed-book
    ctx, local = hybrid_context(s)
    assert local.adapters[0][1].parent.name == "old-1" and ctx.adapter_mode == "closed-book"
    assert "closed-book adapter old-1" in ctx.notice
    assert "triptych finetune --domain hr_handbook --mode with-passages" in ctx.notice


def test_the_hybrid_answer_carries_the_adapter_line_and_a_reading_adapter_gets_no_worked_example() -> None:
    spec = PIPELINES["finetuned_rag"]
    for mode, turns in (("with-passages", ["system", "human"]), ("closed-book", ["system", "human", "ai", "human"])):
        chat = ScriptedChat(reply="2.25 days [1].")
        ctx = PipelineContext(chat=chat, model="ft", retriever=FakeRetriever(CHUNKS), adapter_mode=mode,
                              notice=f"{mode} adapter r1")  # fmt: skip
        state = asyncio.run(spec.graph().ainvoke({"question": "Leave per month?", "domain": "hr"}, context=ctx))
        assert state["notice"] == f"{mode} adapter r1" and state["answer"] == "2.25 days [1]."
        assert [m.type for m in chat.calls[0]] == turns
        assert "[1] (Leave policy)" in chat.calls[0][-1].content


def test_the_hybrid_is_shown_by_default_once_a_with_passages_adapter_exists(tmp_path) -> None:
    s = settings(tmp_path)
    assert default_pipelines(s) == DEFAULT_PIPELINES == ["prompt", "rag", "finetuned"]
    finished_run(s, "closed-1", "closed-book")
    assert default_pipelines(s) == DEFAULT_PIPELINES
    finished_run(s, "reads-1", "with-passages", domain="support_kb")
    assert default_pipelines(s) == [*DEFAULT_PIPELINES, "finetuned_rag"]
    assert default_pipelines(s, "support_kb") == [*DEFAULT_PIPELINES, "finetuned_rag"]
    assert default_pipelines(s, "hr_handbook") == DEFAULT_PIPELINES
    assert PIPELINES["finetuned_rag"].what_changed.startswith("Same model, trained to read your documents")


def test_runs_list_their_mode(tmp_path) -> None:
    s = settings(tmp_path)
    finished_run(s, "a-closed", "closed-book")
    finished_run(s, "b-reads", "with-passages")
    assert [(r.run_id, r.mode, r.active) for r in registry.list_runs(s)] == [
        ("a-closed", "closed-book", True),
        ("b-reads", "with-passages", True),
    ]


def test_the_cli_names_the_modes_and_keeps_with_passages_local(clean_env, monkeypatch) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from triptych.cli import app

    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(clean_env / "data"))
    runner = CliRunner()
    unknown = runner.invoke(app, ["finetune", "--domain", "hr_handbook", "--mode", "open-book"])
    assert unknown.exit_code == 2 and "expected one of closed-book, with-passages" in unknown.output
    hosted = runner.invoke(app, ["finetune", "--domain", "hr_handbook", "--mode", "with-passages", "--provider",
                                 "openai"])  # fmt: skip
    assert hosted.exit_code == 2 and "trains a local LoRA adapter" in hosted.output
