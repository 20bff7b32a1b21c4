"""Does a training run slow the answers? The local model's time to first token, alone and while a worker trains.

The prompt pipeline answers the same demo questions (hr_handbook's test split) three times: alone,
while the app's training queue runs a real LoRA worker (`triptych.finetune.worker`, idle priority,
TRIPTYCH_FINETUNE_THREADS torch threads) on the domain, and alone again after the run is cancelled
(the two "alone" rounds bracket other load on the machine). Prints one JSON object.

    python benchmarks/bench_train_contention.py [--questions 8] [--threads 0] [--cache-root data]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from graphs.compare import Comparison
from triptych.finetune.worker import read_status
from triptych.llm.server import LocalModels
from triptych.qa import domain_qa
from triptych.settings import load_settings
from triptych.ui.training_jobs import TrainingQueue

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "hr_handbook"


def ttfts(comparison: Comparison, questions: list[str]) -> list[float]:
    """The prompt pipeline's time to first token (s) for each question, one after the other."""
    out = []
    for q in questions:
        result = comparison.run(q, DOMAIN, ["prompt"])["prompt"]
        if result.error:
            raise RuntimeError(result.error)
        out.append(round(result.ttft_s, 3))
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": max(values), "min": min(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="the worker's torch threads (0: every core)")
    parser.add_argument("--cache-root", type=Path, default=REPO / "data", help="cached safetensors base model")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    settings = load_settings(data_dir=work / "data", corpora_dir=REPO / "corpora", finetune_threads=args.threads)
    questions = [r.question for r in domain_qa(settings.corpora_dir, DOMAIN, "test") if r.answerable][: args.questions]
    models = LocalModels(settings)
    comparison = Comparison(settings, models)
    queue = TrainingQueue(settings, worker_args=["--cache-root", str(args.cache_root)])
    try:
        ttfts(comparison, questions[:1])  # warm-up: server start, prompt cache of the system prompt
        alone = ttfts(comparison, questions)
        queue.enqueue(DOMAIN)
        waited = time.perf_counter()
        while (job := read_status(settings, DOMAIN)) is None or job.status != "training":
            if job is not None and job.status == "failed":
                raise RuntimeError(job.error)
            time.sleep(0.5)
        waited_s = time.perf_counter() - waited
        step_before = job.step
        t = time.perf_counter()
        during = ttfts(comparison, questions)
        phase_s = time.perf_counter() - t
        job = read_status(settings, DOMAIN)
        steps_during = (job.step - step_before) if job else None
        queue.stop()
        queue.wait(120)
        after = ttfts(comparison, questions)
    finally:
        queue.stop()
        models.close()
    both_alone = alone + after
    print(json.dumps({
        "questions": len(questions), "pipeline": "prompt", "worker_threads": args.threads or os.cpu_count(),
        "ttft_alone_s": summary(both_alone), "ttft_while_training_s": summary(during),
        "median_delta_s": round(statistics.median(during) - statistics.median(both_alone), 3),
        "max_delta_s": round(max(during) - statistics.median(both_alone), 3),
        "ttft_alone_before": alone, "ttft_while_training": during, "ttft_alone_after": after,
        "worker_start_to_training_s": round(waited_s, 1),
        "training_steps_during_questions": steps_during, "questions_phase_s": round(phase_s, 1),
        "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
