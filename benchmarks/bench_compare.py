"""Speed of a comparison: per-pipeline ttft and total, and what the concurrent runner costs.

Indexes the demo corpora in a throw-away Chroma folder (and a fresh data dir, so the fine-tuned
column reports "not fine-tuned yet" unless --data-dir names one with adapters), then for each of N
demo test questions (hr_handbook first, then support_kb and compliance_policies):

1. the comparison of all pipelines at once (TRIPTYCH_LOCAL_CONCURRENCY=1, the default): wall time to
   the last answer, and each pipeline's ttft and total;
2. each pipeline alone, in the same session: the sum and the max of their wall times;
3. raw llama.cpp: the exact messages each pipeline sent, replayed with the openai client straight to
   the server, max_tokens = the tokens that pipeline generated (non-streaming, one after the other);
4. the comparison again with TRIPTYCH_LOCAL_CONCURRENCY=2.

The order of 1-4 rotates from question to question so that load from other processes on a shared
machine spreads over all of them. Prints one JSON object.

    .venv/bin/python benchmarks/bench_compare.py --questions 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.compare import Comparison  # noqa: E402
from graphs.registry import DEFAULT_PIPELINES  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.evaluate.scoring import percentile  # noqa: E402
from triptych.index import chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.factory import make_openai_client, resolve_endpoint  # noqa: E402
from triptych.llm.server import LocalModels  # noqa: E402
from triptych.qa import domain_qa  # noqa: E402
from triptych.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ("hr_handbook", "support_kb", "compliance_policies")


def stats(values: list[float]) -> dict[str, float | None]:
    """median and p95 (seconds, 3 decimals)."""
    if not values:
        return {"n": 0, "median": None, "p95": None}
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "p95": round(percentile(values, 0.95) or 0.0, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--pipelines", default=",".join(DEFAULT_PIPELINES))
    parser.add_argument("--data-dir", type=Path, default=None, help="where adapters are (default: a temp folder)")
    args = parser.parse_args()
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    questions = [(d, r) for d in DOMAINS for r in domain_qa(REPO / "corpora", d, "test")][: args.questions]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        base = Settings(
            _env_file=None,  # type: ignore[call-arg]
            chroma_path=Path(tmp) / "indexes",
            data_dir=args.data_dir or Path(tmp) / "data",
            corpora_dir=REPO / "corpora",
            pipeline_timeout_s=900,
        )
        embedder = load_embedder(base.embedding_model, base.embedding_batch_size)
        client = chroma_client(base)
        for domain in sorted({d for d, _ in questions}):
            ingest_paths(base, domain, [REPO / "corpora" / domain / "docs"], client=client, embedder=embedder)
        models = LocalModels(base)
        try:
            results = measure(base, models, questions, pipelines)
        finally:
            models.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


def measure(base: Settings, models: LocalModels, questions: list, pipelines: list[str]) -> dict:
    """Run the four measurements per question (rotating their order) and summarise them."""
    one = Comparison(base, models)
    two = Comparison(base.model_copy(update={"local_concurrency": 2}), models)
    endpoint = resolve_endpoint(base, "prompt", models)  # the base model's server (all local pipelines)
    raw_client = make_openai_client(endpoint, base)
    one.run("warm-up: say hi", None, ["prompt"])  # server start, first-request costs
    per: dict[str, dict[str, list[float]]] = {p: {"ttft": [], "total": []} for p in pipelines}
    wall = {"concurrent_c1": [], "concurrent_c2": [], "alone_sum": [], "alone_max": [], "raw": []}
    tokens = {"completion": 0, "prompt": 0}
    notices: dict[str, str] = {}
    for i, (domain, record) in enumerate(questions):
        steps = ["c1", "alone", "c2"]
        steps = steps[i % 3 :] + steps[: i % 3]
        concurrent = None
        for step in steps:
            if step == "c1":
                t0 = time.perf_counter()
                concurrent = one.run(record.question, domain, pipelines)
                wall["concurrent_c1"].append(time.perf_counter() - t0)
            elif step == "c2":
                t0 = time.perf_counter()
                two.run(record.question, domain, pipelines)
                wall["concurrent_c2"].append(time.perf_counter() - t0)
            else:
                alone = []
                for p in pipelines:
                    t0 = time.perf_counter()
                    one.run(record.question, domain, [p])
                    alone.append(time.perf_counter() - t0)
                wall["alone_sum"].append(sum(alone))
                wall["alone_max"].append(max(alone))
        assert concurrent is not None
        for p, r in concurrent.items():
            if r.error:
                notices[p] = f"error: {r.error}"
            elif r.notice and not r.answer:
                notices[p] = r.notice
            elif r.total_s is not None:
                per[p]["total"].append(r.total_s)
                if r.ttft_s is not None:
                    per[p]["ttft"].append(r.ttft_s)
        # raw llama.cpp: the same prompts, the same number of generated tokens, no graph, no streaming
        t0 = time.perf_counter()
        for r in concurrent.values():
            if r.messages and r.completion_tokens:
                raw_client.chat.completions.create(
                    model=endpoint.model, messages=r.messages, max_tokens=r.completion_tokens, temperature=0
                )
                tokens["completion"] += r.completion_tokens
                tokens["prompt"] += r.prompt_tokens or 0
        wall["raw"].append(time.perf_counter() - t0)
        partial = summarise(base, questions[: i + 1], pipelines, per, wall, tokens, notices)
        print(json.dumps({"after_question": i + 1, **partial}), file=sys.stderr, flush=True)
    return summarise(base, questions, pipelines, per, wall, tokens, notices)


def summarise(base: Settings, questions: list, pipelines: list[str], per: dict, wall: dict, tokens: dict,
              notices: dict) -> dict:  # fmt: skip
    """The benchmark's JSON from the measurements so far."""
    med = {k: statistics.median(v) for k, v in wall.items()}
    overhead = {
        "concurrent_vs_alone_sum": round(sum(wall["concurrent_c1"]) / sum(wall["alone_sum"]), 3),
        "concurrent_vs_alone_max": round(sum(wall["concurrent_c1"]) / sum(wall["alone_max"]), 3),
        "concurrent_vs_raw": round(sum(wall["concurrent_c1"]) / sum(wall["raw"]), 3) if sum(wall["raw"]) else None,
        "concurrent_minus_raw_s_median": round(
            statistics.median(c - r for c, r in zip(wall["concurrent_c1"], wall["raw"], strict=True)), 3
        ),
    }
    better = "1" if med["concurrent_c1"] <= med["concurrent_c2"] else "2"
    return {
        "benchmark": "compare",
        "questions": len(questions),
        "domains": sorted({d for d, _ in questions}),
        "pipelines": pipelines,
        "not_generating": notices,
        "model": base.local_model_alias,
        "local_threads": base.local_threads,
        "max_tokens": base.max_tokens,
        "per_pipeline": {p: {"ttft_s": stats(v["ttft"]), "total_s": stats(v["total"])} for p, v in per.items()},
        "wall_s": {k: stats(v) for k, v in wall.items()},
        "overhead": overhead,
        "raw_tokens": tokens,
        "local_concurrency": {
            "time_to_last_answer_median_s": {"1": round(med["concurrent_c1"], 3), "2": round(med["concurrent_c2"], 3)},
            "better": better,
        },
        "cpus": os.cpu_count(),
        "load_avg_end": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
