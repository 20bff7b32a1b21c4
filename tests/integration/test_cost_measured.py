"""Cost figures measured for real: a real Chroma index built with the real embedding model, the real local model.

Ingest a demo corpus (the build is timed), ask one question through the prompt and RAG pipelines
(the answer is kept in the history as the app keeps it), then price both from what was measured;
and a real answer's CPU seconds, read from the real server process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.compare import Comparison
from triptych.cost_sources import domain_costs, index_builds
from triptych.history import save_comparison
from triptych.ingest import ingest_paths
from triptych.llm.server import LocalModels
from triptych.qa import domain_qa
from triptych.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "hr_handbook"


def test_a_real_build_and_real_answers_price_the_prompt_and_rag_lines(
    tmp_path: Path, local_models: LocalModels
) -> None:
    settings = Settings(_env_file=None, chroma_path=tmp_path / "indexes", data_dir=tmp_path / "data",  # type: ignore[call-arg]
                        corpora_dir=REPO / "corpora", cost_machine_usd_per_hour=1.0)  # fmt: skip
    report = ingest_paths(settings, DOMAIN, [REPO / "corpora" / DOMAIN / "docs"])
    (build,) = index_builds(settings, DOMAIN)
    assert build["chunks"] == report.chunks > 0 and build["seconds"] > 0 and build["cpu_s"] > 0

    question = next(r for r in domain_qa(REPO / "corpora", DOMAIN, "test") if r.answerable).question
    results = Comparison(settings, local_models).run(question, DOMAIN, ["prompt", "rag"])
    assert not any(r.error for r in results.values()), {p: r.error for p, r in results.items()}
    save_comparison(settings, question, DOMAIN, results)

    dc = domain_costs(settings, DOMAIN)
    prompt, rag = dc.per_question["prompt"], dc.per_question["rag"]
    for pid, pq in (("prompt", prompt), ("rag", rag)):
        r = results[pid]
        busy = r.total_s - (r.queued_s or 0.0)
        assert pq.local and pq.n == 1 and pq.from_history == 1
        assert pq.busy_s == pytest.approx(busy) and pq.prompt_tokens == r.prompt_tokens > 0  # as the server counted
        # one slot in the local model's queue: each answer recorded the CPU seconds it used, and is priced by them
        assert pq.cpu_s == pytest.approx(r.cpu_s) and r.cpu_s > 0
        assert pq.usd == pytest.approx(r.cpu_s / 3600 / settings.cost_machine_vcpus)
        assert pq.basis == f"{r.cpu_s:.2f} CPU-s"
    (index,) = dc.one_off["rag"]
    assert index.usd == pytest.approx(build["seconds"] / 3600, rel=1e-3)
    assert f"{report.chunks} chunks in the index now" in index.detail
    assert [line.pipeline for line in dc.lines] == ["prompt", "rag"]


def test_a_real_local_answer_carries_the_cpu_seconds_the_server_used(local_models: LocalModels) -> None:
    assert local_models.queue.slots == 1  # TRIPTYCH_LOCAL_CONCURRENCY=1: the CPU time is the answer's alone
    server = local_models.base()
    before = local_models.cpu_seconds()
    assert server.pid in before

    results = Comparison(local_models.settings, local_models).run("What is the capital of France?", None, ["prompt"])
    answer = results["prompt"]
    assert not answer.error and answer.answer, answer.error
    assert answer.cpu_s is not None and answer.cpu_s > 0
    # no more than the server's compute threads (and its HTTP threads) could use while the pipeline ran; 10 ms ticks
    busy = answer.total_s - (answer.queued_s or 0.0)
    assert answer.cpu_s <= busy * (local_models.settings.local_threads + 2) + 0.05
    assert local_models.cpu_seconds()[server.pid] - before[server.pid] >= answer.cpu_s - 1e-6
