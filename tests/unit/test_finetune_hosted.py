"""Hosted fine-tuning at the HTTP level: upload, create, poll, record the ft: model, use it in the comparison."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx2
import pytest
from openai import OpenAI
from typer.testing import CliRunner

from triptych.finetune import registry
from triptych.finetune.hosted import HostedJobError, openai_client, run_openai_job
from triptych.settings import ConfigError, load_settings

CORPORA = Path(__file__).resolve().parents[2] / "corpora"
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:halden::abc123"


class FineTuningDouble:
    """OpenAI's files and fine_tuning.jobs endpoints, answering with their exact JSON shapes."""

    def __init__(self, statuses: tuple[str, ...] = ("running", "succeeded")) -> None:
        self.requests: list[httpx2.Request] = []
        self.statuses = list(statuses)
        self.created: dict = {}

    def job(self, status: str) -> dict:
        done = status == "succeeded"
        return {
            "object": "fine_tuning.job", "id": "ftjob-abc123", "model": self.created.get("model"),
            "created_at": 1764000000, "finished_at": 1764000600 if done else None,
            "fine_tuned_model": FT_MODEL if done else None, "organization_id": "org-1",
            "result_files": ["file-result"] if done else [], "status": status,
            "validation_file": None, "training_file": "file-train1", "hyperparameters": {"n_epochs": 3},
            "trained_tokens": 5040 if done else None, "seed": 0,
            "error": {"code": "invalid_training_file", "message": "bad line 3", "param": "training_file"}
            if status == "failed" else None,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        }  # fmt: skip

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/v1/files":
            return httpx2.Response(200, json={
                "id": "file-train1", "object": "file", "bytes": len(request.content), "created_at": 1764000000,
                "filename": "training.jsonl", "purpose": "fine-tune", "status": "processed", "expires_at": None,
            })  # fmt: skip
        if request.method == "POST" and path == "/v1/fine_tuning/jobs":
            self.created = json.loads(request.content)
            return httpx2.Response(200, json=self.job("validating_files"))
        if request.method == "GET" and path == "/v1/fine_tuning/jobs/ftjob-abc123":
            return httpx2.Response(200, json=self.job(self.statuses.pop(0)))
        return httpx2.Response(404, json={"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

    def client(self) -> OpenAI:
        return OpenAI(api_key="sk-test", http_client=httpx2.Client(transport=httpx2.MockTransport(self.handler)),
                      max_retries=0)  # fmt: skip


@pytest.fixture
def settings(clean_env: Path):  # noqa: ANN201
    return load_settings(data_dir=clean_env / "data", corpora_dir=CORPORA, finetune_poll_s=0.01, finetune_epochs=3)


def test_job_uploads_the_training_set_and_records_the_ft_model(settings) -> None:  # noqa: ANN001
    double = FineTuningDouble()
    sleeps: list[float] = []
    info = run_openai_job(settings, "hr_handbook", double.client(), sleep=sleeps.append)
    upload, create, *polls = double.requests
    assert (upload.method, str(upload.url)) == ("POST", "https://api.openai.com/v1/files")
    body = upload.content.decode()
    assert 'name="purpose"' in body and "fine-tune" in body and '"role": "assistant"' in body
    assert double.created["training_file"] == "file-train1"
    assert double.created["model"] == "gpt-4o-mini-2024-07-18"
    assert double.created["suffix"] == "hr-handbook"
    assert double.created["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    assert len(polls) == 2 and sleeps == [0.01, 0.01]
    assert info["hosted_model"] == FT_MODEL and info["status"] == "succeeded"
    assert registry.hosted_model(settings, "hr_handbook") == FT_MODEL
    assert registry.active_adapter(settings, "hr_handbook") is None  # the local adapter is separate
    runs = registry.list_runs(settings)
    assert [(r.run_id, r.kind, r.active) for r in runs] == [(info["run_id"], "openai", True)]
    lines = (settings.runs_dir / info["run_id"] / "training.jsonl").read_text().splitlines()
    test_questions = {json.loads(line)["question"] for line in (CORPORA / "hr_handbook" / "qa.jsonl").open()
                      if json.loads(line)["split"] == "test"}  # fmt: skip
    assert not {json.loads(line)["messages"][1]["content"] for line in lines} & test_questions


def test_a_failed_job_says_why_and_is_not_activated(settings) -> None:  # noqa: ANN001
    double = FineTuningDouble(statuses=("failed",))
    with pytest.raises(HostedJobError, match="ftjob-abc123 failed: bad line 3"):
        run_openai_job(settings, "hr_handbook", double.client(), sleep=lambda _s: None)
    assert registry.hosted_model(settings, "hr_handbook") is None
    assert [r.status for r in registry.list_runs(settings)] == ["failed"]


def test_hosted_jobs_need_the_openai_key(settings) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        openai_client(settings)


def test_comparison_uses_the_domains_hosted_model_for_an_openai_finetuned_endpoint(clean_env, monkeypatch) -> None:  # noqa: ANN001
    from graphs.compare import Comparison
    from graphs.registry import get_spec

    monkeypatch.setenv("TRIPTYCH_FINETUNED__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = load_settings(data_dir=clean_env / "data", corpora_dir=CORPORA, finetune_poll_s=0.01)
    run_openai_job(settings, "hr_handbook", FineTuningDouble().client(), sleep=lambda _s: None)
    comparison = Comparison(settings)
    ctx = comparison.prepare(get_spec("finetuned"), "hr_handbook", asyncio.Semaphore(1))
    assert ctx.model == FT_MODEL
    other = comparison.prepare(get_spec("finetuned"), "support_kb", asyncio.Semaphore(1))
    assert other.model == "gpt-4o-mini"


def test_cli_status_and_activate(clean_env, monkeypatch) -> None:  # noqa: ANN001
    from triptych.cli import app

    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(CORPORA))
    runner = CliRunner()
    assert "no fine-tuning runs yet" in runner.invoke(app, ["finetune", "status"]).output
    settings = load_settings()
    info = run_openai_job(settings, "hr_handbook", FineTuningDouble().client(), sleep=lambda _s: None, activate=False)
    out = runner.invoke(app, ["finetune", "status", "--output", "json"])
    assert json.loads(out.output) == [{"run_id": info["run_id"], "domain": "hr_handbook", "kind": "openai",
                                       "mode": "closed-book", "status": "succeeded", "active": False}]  # fmt: skip
    result = runner.invoke(app, ["finetune", "activate", info["run_id"]])
    assert result.exit_code == 0 and "active for hr_handbook" in result.output
    assert registry.hosted_model(load_settings(), "hr_handbook") == FT_MODEL
    missing = runner.invoke(app, ["finetune", "activate", "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output
    bare = runner.invoke(app, ["finetune"])
    assert bare.exit_code == 2 and "--domain is required" in bare.output
