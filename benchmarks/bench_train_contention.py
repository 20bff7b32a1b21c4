"""Does a training run slow the answers? The local model's time to first token, alone and while a worker trains.

The prompt and RAG pipelines answer the same demo questions (hr_handbook's test split, both columns
at once, as on the Compare page) three times: alone,
while the app's training queue runs a real LoRA worker (`triptych.finetune.worker`, idle priority,
TRIPTYCH_FINETUNE_THREADS torch threads) on the domain, and alone again after the run is cancelled
(the two "alone" rounds bracket other load on the machine). `--contender cli` trains with
`triptych finetune` instead, at normal priority, as the app's in-process training thread used to.
Prints one JSON object.

    python benchmarks/bench_train_contention.py [--questions 8] [--pipelines prompt,rag] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphs.compare import Comparison
from triptych.finetune.worker import read_status
from triptych.ingest import ingest_paths
from triptych.llm.server import LocalModels
from triptych.qa import domain_qa
from triptych.settings import Settings, load_settings
from triptych.ui.training_jobs import TrainingQueue

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "hr_handbook"


def ttfts(comparison: Comparison, questions: list[str], pipelines: list[str]) -> dict[str, list[float]]:
    """Each pipeline's time to first token (s) per question, the questions one after the other."""
    out: dict[str, list[float]] = {p: [] for p in pipelines}
    for q in questions:
        for pid, result in comparison.run(q, DOMAIN, pipelines).items():
            if result.error:
                raise RuntimeError(result.error)
            out[pid].append(round(result.ttft_s, 3))
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": max(values), "min": min(values)}


def compare(alone: list[float], during: list[float]) -> dict[str, object]:
    """Medians and the worst case, alone against while training."""
    return {
        "alone_s": summary(alone), "while_training_s": summary(during),
        "median_delta_s": round(statistics.median(during) - statistics.median(alone), 3),
        "max_delta_s": round(max(during) - statistics.median(alone), 3),
    }  # fmt: skip


def start_cli(settings: Settings) -> subprocess.Popen[bytes]:
    """`triptych finetune` on the domain, in a process of normal priority (what the app used to run in a thread)."""
    env = {**os.environ, "TRIPTYCH_DATA_DIR": str(settings.data_dir), "TRIPTYCH_CORPORA_DIR": str(settings.corpora_dir),
           "PYTHONPATH": str(REPO)}  # fmt: skip
    command = [sys.executable, "-m", "triptych.cli", "finetune", "--domain", DOMAIN, "--no-evaluate", "--no-activate"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_training(settings: Settings, queue: TrainingQueue, cli: subprocess.Popen[bytes] | None) -> int:
    """Start the contender and return once its training steps run (the worker's step count then)."""
    if cli is not None:  # its run.json says "training" once the model is loaded; a checkpoint comes at step 20
        while not list(settings.runs_dir.glob("*/checkpoint/state.json")):
            if cli.poll() is not None:
                raise RuntimeError(f"triptych finetune exited with {cli.returncode}")
            time.sleep(0.5)
        return 0
    queue.enqueue(DOMAIN)
    while (job := read_status(settings, DOMAIN)) is None or job.status != "training":
        if job is not None and job.status == "failed":
            raise RuntimeError(job.error)
        time.sleep(0.5)
    return job.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--pipelines", default="prompt,rag")
    parser.add_argument("--contender", choices=["worker", "cli"], default="worker")
    parser.add_argument("--threads", type=int, default=0, help="the worker's torch threads (0: every core)")
    parser.add_argument("--max-tokens", type=int, default=48, help="answer length (not in the TTFT)")
    parser.add_argument("--cache-root", type=Path, default=REPO / "data", help="cached safetensors base model")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    settings = load_settings(data_dir=work / "data", corpora_dir=REPO / "corpora", finetune_threads=args.threads,
                             max_tokens=args.max_tokens)  # fmt: skip
    questions = [r.question for r in domain_qa(settings.corpora_dir, DOMAIN, "test") if r.answerable][: args.questions]
    pipelines = args.pipelines.split(",")
    if "rag" in pipelines:
        ingest_paths(settings, DOMAIN, [settings.corpora_dir / DOMAIN / "docs"])
    models = LocalModels(settings)
    comparison = Comparison(settings, models)
    # --no-evaluate: straight to the training steps (scoring before them loads the cores the same way)
    queue = TrainingQueue(settings, worker_args=["--cache-root", str(args.cache_root), "--no-evaluate"])
    try:
        ttfts(comparison, questions[:1], pipelines)  # warm-up: server start, embedder, cached system prompts
        alone = ttfts(comparison, questions, pipelines)
        waited = time.perf_counter()
        cli = start_cli(settings) if args.contender == "cli" else None
        step_before = wait_for_training(settings, queue, cli)
        waited_s = time.perf_counter() - waited
        t = time.perf_counter()
        during = ttfts(comparison, questions, pipelines)
        phase_s = time.perf_counter() - t
        steps_during = None if cli else read_status(settings, DOMAIN).step - step_before  # type: ignore[union-attr]
        if cli:
            cli.terminate()
            cli.wait(120)
        queue.stop()
        queue.wait(120)
        after = ttfts(comparison, questions, pipelines)
    finally:
        queue.stop()
        models.close()
    print(json.dumps({
        "questions": len(questions), "contender": args.contender, "worker_threads": args.threads or os.cpu_count(),
        "ttft": {p: compare(alone[p] + after[p], during[p]) for p in pipelines},
        "ttft_alone_before": alone, "ttft_while_training": during, "ttft_alone_after": after,
        "worker_start_to_training_s": round(waited_s, 1),
        "training_steps_during_questions": steps_during, "questions_phase_s": round(phase_s, 1),
        "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
