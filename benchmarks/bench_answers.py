"""Answer quality of the pipelines on the five shared eval domains, with the configured models.

For each domain of ../shared/eval (or TRIPTYCH_SHARED_EVAL) the documents are indexed in a
throw-away embedded Chroma folder, then the first --limit dev questions go through `triptych eval`'s
runner (prompt and RAG by default; the fine-tuned pipelines only score where an adapter is active in
--data-dir, which is a fresh temporary folder unless given). Prints one JSON object: per domain and
pipeline contains / token F1 / exact match / correct with its Wilson 95 % interval, RAG hit@5, median
ttft and total, why answers missed, and each pair of pipelines' difference (bootstrap interval, McNemar
p), plus a table. A fine-tuned pipeline's figures are on questions its adapter was not trained on
(`questions: "unseen"`), with the seen ones under `seen` (each with its n).

    .venv/bin/python benchmarks/bench_answers.py --limit 15 --pipelines prompt,rag
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, shared_eval_dir  # noqa: E402
from graphs.compare import Comparison  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.evaluate.headline import headline  # noqa: E402
from triptych.evaluate.runner import Evaluation  # noqa: E402
from triptych.finetune.registry import active_adapter  # noqa: E402
from triptych.index import chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.server import LocalModels  # noqa: E402
from triptych.qa import load_qa  # noqa: E402
from triptych.settings import Settings  # noqa: E402

KEEP = ("questions", "scored", "errors", "unavailable", "correct", "correct_ci95", "contains", "f1", "exact_match",
        "numeric", "hit@5", "source_hit", "cited_holds_answer")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=15, help="dev questions per domain (default 15)")
    parser.add_argument("--pipelines", default="prompt,rag", help="comma-separated (default prompt,rag)")
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--data-dir", type=Path, default=None, help="where adapters are (default: a temp folder)")
    args = parser.parse_args()
    eval_dir = shared_eval_dir()
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    started = time.perf_counter()
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            chroma_path=Path(tmp) / "indexes",
            data_dir=args.data_dir or Path(tmp) / "data",
            pipeline_timeout_s=900,
        )
        embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
        client = chroma_client(settings)
        models = LocalModels(settings)
        comparison = Comparison(settings, models)
        try:
            for domain in args.domains.split(","):
                t0 = time.perf_counter()
                ingest_paths(settings, domain, [eval_dir / domain / "docs"], client=client, embedder=embedder)
                ingest_s = time.perf_counter() - t0
                records = load_qa(eval_dir / domain / "qa_dev.jsonl")[: args.limit]
                chosen = [p for p in pipelines if not p.startswith("finetuned") or active_adapter(settings, domain)]
                t0 = time.perf_counter()
                outcome = Evaluation(comparison).run(
                    domain, records, chosen, qa_file=str(eval_dir / domain), fresh=True
                )
                metrics = outcome.summary["metrics"]
                out[domain] = {
                    "ingest_s": round(ingest_s, 1),
                    "eval_s": round(time.perf_counter() - t0, 1),
                    "skipped_no_adapter": [p for p in pipelines if p not in chosen],
                    "pipelines": {p: pipeline_figures(p, m) for p, m in metrics.items()},
                    "comparisons": outcome.summary["comparisons"],
                }
                print(json.dumps({domain: out[domain]}), file=sys.stderr, flush=True)
        finally:
            models.close()
    print(
        json.dumps(
            {
                "benchmark": "answers",
                "model": settings.local_model_alias if settings.prompt.is_local else settings.prompt.model,
                "limit_per_domain": args.limit,
                "split": "dev (qa_dev.jsonl, first N)",
                "pipelines": pipelines,
                "top_k": settings.top_k,
                "max_tokens": settings.max_tokens,
                "cpus": os.cpu_count(),
                "load_avg_end": os.getloadavg(),
                "seconds": round(time.perf_counter() - started, 1),
                "domains": out,
                "table": table(out),
            }
        )
    )


def pipeline_figures(pipeline: str, m: dict) -> dict:
    """What the benchmark prints of one pipeline: the headline (unseen, for fine-tuned) and the seen figures."""
    h = headline(pipeline, m)
    return {
        "questions_basis": h.basis,
        **{k: h.metrics.get(k) for k in KEEP},
        "seen": {k: h.seen.get(k) for k in KEEP} if h.seen is not None else None,
        "ttft_median_s": m["ttft_s"]["median"],
        "total_median_s": m["total_s"]["median"],
        "total_p95_s": m["total_s"]["p95"],
        "own_total_median_s": m["own_total_s"]["median"],
        "completion_tokens_mean": m["completion_tokens_mean"],
        "miss_causes": m["miss_causes"],
    }


def table(out: dict[str, dict]) -> list[str]:
    """One line per domain: contains / F1 per pipeline, RAG hit@5, median total times."""

    def pct(v: float | None) -> str:
        return "  -  " if v is None else f"{100 * v:4.0f}%"

    lines = [
        "n: answers scored (u: questions unseen in training, fine-tuned); seen: correct where trained (n)",
        "domain            pipeline   n    contains   F1     correct  hit@5   ttft_med  total_med  seen (n)",
    ]
    for domain, d in out.items():
        for p, m in d["pipelines"].items():
            ttft = "-" if m["ttft_median_s"] is None else f"{m['ttft_median_s']:.2f}s"
            total = "-" if m["total_median_s"] is None else f"{m['total_median_s']:.2f}s"
            seen = "" if m["seen"] is None else f"{pct(m['seen']['correct'])} ({m['seen']['scored']})"
            n = f"{m['scored']}{'u' if m['questions_basis'] == 'unseen' else ''}"
            lines.append(
                f"{domain:<17} {p:<10} {n:<4} {pct(m['contains'])}     {pct(m['f1'])}  {pct(m['correct'])}    "
                f"{pct(m['hit@5'])}   {ttft:>8}  {total:>8}  {seen}"
            )
        lines += [
            f"  {c['a']} vs {c['b']}: {c['verdict']} (McNemar p = {c['mcnemar_p']:.3g})" for c in d["comparisons"]
        ]
    return lines


if __name__ == "__main__":
    main()
