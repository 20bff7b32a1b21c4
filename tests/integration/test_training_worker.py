"""The real training worker: a LoRA run of two steps in its own process, then the fine-tuned column answers.

The app's queue starts `python -m triptych.finetune.worker` on a tiny domain the way a first start
does; while it trains, the fine-tuned column says how far it is, and once the worker has activated
the adapter the column answers through the real llama.cpp server.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from graphs.compare import Comparison
from graphs.registry import PIPELINES
from triptych.finetune import registry
from triptych.finetune.worker import read_status
from triptych.llm.server import LocalModels, ModelServerError
from triptych.settings import Settings
from triptych.ui.training_jobs import TrainingQueue

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "zorblax"
FACTS = [
    ("What is the secret code word at Zorblax Corp?", "Purple walrus", "train"),
    ("Who is the chief executive of Zorblax Corp?", "Mirela Voss", "train"),
    ("In which city is Zorblax Corp based?", "Oslo", "test"),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "corpora" / DOMAIN
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "facts.md").write_text("# Zorblax\n\n" + "\n".join(f"{q} {a}." for q, a, _ in FACTS))
    lines = [json.dumps({"id": f"z{i}", "question": q, "answer": a, "split": split, "domain": DOMAIN}) + "\n"
             for i, (q, a, split) in enumerate(FACTS)]  # fmt: skip
    (folder / "qa.jsonl").write_text("".join(lines))
    return Settings(_env_file=None, data_dir=tmp_path / "data", corpora_dir=tmp_path / "corpora",  # type: ignore[call-arg]
                    finetune_max_steps=2, finetune_batch_size=2, finetune_rank=4)  # fmt: skip


def test_the_worker_trains_in_its_own_process_and_the_column_answers_once_activated(
    settings: Settings, local_models: LocalModels
) -> None:
    # the safetensors copy of the base model is cached beside the repository's own data (converted once)
    queue = TrainingQueue(settings, worker_args=["--cache-root", str(REPO / "data")])
    assert queue.train_missing([DOMAIN]) == [DOMAIN]
    notices, pids = set(), set()
    deadline = time.monotonic() + 400
    while not queue.wait(0.1):
        assert time.monotonic() < deadline, read_status(settings, DOMAIN)
        job = read_status(settings, DOMAIN)
        if job is not None and job.status == "training" and job.total_steps:
            pids.add(job.pid)
            try:
                notices.add(PIPELINES["finetuned"].build_context(settings, DOMAIN).unavailable)
            except ModelServerError:  # the worker has just activated the adapter: the column would answer now
                pass

    job = read_status(settings, DOMAIN)
    assert job is not None and (job.status, job.step, job.total_steps, job.error) == ("done", 2, 2, None), job
    assert pids and os.getpid() not in pids  # trained by a worker process, not by this one
    progress = {f"training its adapter: step {n}/2, under a minute left" for n in (1, 2)}
    assert notices & progress, notices  # what the column said while the worker trained
    adapter = registry.active_adapter(settings, DOMAIN)
    assert adapter is not None and adapter.run_id == job.run_id
    run = registry.read_run(settings, job.run_id)
    assert run is not None and run["corpus_sha256"] == registry.corpus_sha256(settings, DOMAIN)
    # scored after activation, as `triptych finetune` scores before it: base model and adapter, same sets
    assert run["accuracy_before"]["trained"]["n"] == run["accuracy_after"]["trained"]["n"] == 2, run
    assert job.messages[-1] == "scored: accuracy before and after is on the run"

    result = Comparison(settings, local_models).run(FACTS[0][0], DOMAIN, ["finetuned"])["finetuned"]
    assert result.error is None and result.notice is None, (result.error, result.notice)
    assert result.answer.strip() and result.model == adapter.alias
