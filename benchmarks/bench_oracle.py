"""RAG against its limit: the same RAG graph answering from the gold passage and from retrieval.

For each domain of ../shared/eval (or TRIPTYCH_SHARED_EVAL), every dev question that has a gold
passage (`evidence_span`, else `answer_span` in qa_dev.jsonl) is asked twice through the RAG
pipeline with the configured model, prompt and context selection:
  (a) oracle: the retriever returns one chunk, the gold document's text around the gold span
      (--window characters on each side, 600 by default: the 1,200-character passage of FIELD-NOTES);
  (b) rag: the domain's real retriever over a Chroma index of all the domain's documents.
Accuracy uses the project's scorer (triptych/evaluate/scoring.py): `contains` is the normalised gold
answer in the answer as whole words, `correct` adds exact match, numeric match and yes/no. Also
per domain: token F1, prompt tokens, time to first token (the pipeline's own, nothing else runs),
chunk-level answer recall of retrieval (a chunk the model was given contains a gold answer) beside
its ceiling (the gold answer occurs in the gold document at all), and the ratios rag / oracle.
Prints one JSON object; a line per domain goes to stderr as it finishes.

    .venv/bin/python benchmarks/bench_oracle.py                   # all five domains, all dev questions
    .venv/bin/python benchmarks/bench_oracle.py --limit 20 --domains general_squad,legal_cuad
    .venv/bin/python benchmarks/bench_oracle.py --half 1          # only the questions no setting was tuned on
    TRIPTYCH_TOP_K=12 .venv/bin/python benchmarks/bench_oracle.py --methods rag   # a retrieval setting alone
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, shared_eval_dir  # noqa: E402
from graphs.compare import Comparison, PipelineResult  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.evaluate import metrics  # noqa: E402
from triptych.evaluate.scoring import answer_spans, score_answer  # noqa: E402
from triptych.index import chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.llm.server import LocalModels  # noqa: E402
from triptych.qa import QARecord, load_qa  # noqa: E402
from triptych.retrieval import RetrievedChunk, retriever_for  # noqa: E402
from triptych.settings import Settings  # noqa: E402

# Settings were tuned on half of each domain's dev questions (a fixed shuffle); --half 1 scores the
# other half alone, questions no setting was chosen on.
TUNE_SEED = 7


def gold_chunk(eval_dir: Path, domain: str, raw: dict, window: int) -> RetrievedChunk | None:
    """The gold document's text around the gold span, as one retrieved chunk; None without a span."""
    span = raw.get("evidence_span") or raw.get("answer_span")
    if not span:
        return None
    doc_id = span.get("doc_id") or raw["doc_ids"][0]
    path = next((eval_dir / domain / "docs").glob(f"{doc_id}.*"))
    with path.open(encoding="utf-8", newline="") as f:
        text = f.read()
    start, end = max(0, span["start"] - window), min(len(text), span["end"] + window)
    title = text.lstrip("# ").split("\n", 1)[0][:120]
    return RetrievedChunk(f"gold:{raw['id']}", path.name, path.name, title, text[start:end], start, end, 1.0)


class GoldRetriever:
    """Returns the gold passage of the question asked (the oracle retriever)."""

    def __init__(self, passages: dict[str, RetrievedChunk], embedder: object) -> None:
        self.passages = passages
        self.embedder = embedder  # the same sentence scoring as the real retriever

    def search(self, query: str, k: int | None = None) -> list[RetrievedChunk]:
        """The question's gold passage."""
        return [self.passages[query]]


def scratch_settings(tmp: Path, chroma_path: Path | None) -> Settings:
    """Settings of the environment (TRIPTYCH_*, no .env) with indexes and data in `tmp`, or an index folder reused."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        chroma_path=chroma_path or tmp / "indexes",
        data_dir=tmp / "data",
        pipeline_timeout_s=900,
    )


def half_of(records: list[QARecord], half: int | None) -> list[QARecord]:
    """All records, or one half of a fixed shuffle (0: the half settings were tuned on, 1: the other)."""
    if half is None:
        return records
    order = list(range(len(records)))
    random.Random(TUNE_SEED).shuffle(order)
    return [records[i] for i in sorted(order[half::2])]


def scored(record: QARecord, result: PipelineResult) -> dict:
    status = "error" if result.error else "ok"
    sources = [s.to_dict() for s in result.sources]
    s = score_answer(record, status=status, answer=result.answer, sources=sources)
    chunk_hit = any(metrics.contains(src["text"], record.gold_answers, answer_spans(record)) for src in sources)
    return {
        "contains": bool(s.get("contains")),
        "correct": bool(s.get("correct")),
        "f1": s.get("f1") or 0.0,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "ttft_s": None if result.ttft_s is None else result.ttft_s - (result.queued_s or 0.0),
        "chunk_hit": chunk_hit,
        "error": result.error,
        "answer": result.answer,
    }


def summary(rows: list[dict]) -> dict:
    n = len(rows)

    def med(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "n": n,
        "contains": round(sum(r["contains"] for r in rows) / n, 4) if n else None,
        "correct": round(sum(r["correct"] for r in rows) / n, 4) if n else None,
        "f1": round(sum(r["f1"] for r in rows) / n, 4) if n else None,
        "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] or 0 for r in rows), 1) if n else None,
        "completion_tokens_mean": round(statistics.mean(r["completion_tokens"] or 0 for r in rows), 1) if n else None,
        "ttft_median_s": med("ttft_s"),
        "errors": sum(bool(r["error"]) for r in rows),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def question_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Which questions, which gold passage, which index, where the answers go (shared with bench_reader)."""
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--limit", type=int, default=0, help="questions per domain (0: all with a gold passage)")
    parser.add_argument("--half", type=int, choices=(0, 1), default=None, help="0: tuning half, 1: the other half")
    parser.add_argument("--window", type=int, default=600, help="characters of the gold document on each side")
    parser.add_argument("--chroma-path", type=Path, default=None, help="reuse an index folder (default: temporary)")
    parser.add_argument("--answers", type=Path, default=None, help="write every answer here (JSON lines)")
    return parser


def run_facts(args: argparse.Namespace, settings: Settings) -> dict:
    """What a run's figures depend on, for its JSON: the questions, the gold window, retrieval and context."""
    half = "" if args.half is None else f", half {args.half} of random.Random({TUNE_SEED})"
    return {
        "split": f"dev (qa_dev.jsonl), questions with a gold passage{half}",
        "window_chars": args.window,
        "top_k": settings.top_k,
        "hybrid": settings.hybrid,
        "context_budget_tokens": settings.context_budget_tokens,
        "context_window": settings.context_window,
    }


def main() -> None:
    parser = question_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--methods", default="oracle,rag", help="rag alone re-measures retrieval settings (oracle ignores them)"
    )
    args = parser.parse_args()
    methods = [m for m in ("oracle", "rag") if m in args.methods.split(",")]
    eval_dir = shared_eval_dir()
    started = time.perf_counter()
    out: dict[str, dict] = {}
    answers = args.answers.open("w", encoding="utf-8") if args.answers else None
    with tempfile.TemporaryDirectory(prefix="triptych-oracle-") as tmp:
        settings = scratch_settings(Path(tmp), args.chroma_path)
        embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
        client = chroma_client(settings)
        models = LocalModels(settings)
        passages: dict[str, RetrievedChunk] = {}
        oracle = Comparison(settings, models, retriever_for=lambda d: GoldRetriever(passages, embedder))
        rag = Comparison(settings, models, retriever_for=lambda d: retriever_for(settings, d, client=client,
                                                                                 embedder=embedder))  # fmt: skip
        try:
            for domain in args.domains.split(","):
                ingest_paths(settings, domain, [eval_dir / domain / "docs"], client=client, embedder=embedder)
                raw = {
                    (obj := json.loads(line))["id"]: obj
                    for line in (eval_dir / domain / "qa_dev.jsonl").read_text(encoding="utf-8").splitlines()
                    if line.strip()
                }
                golds = {r.id: gold_chunk(eval_dir, domain, raw[r.id], args.window) for r in load_qa(
                    eval_dir / domain / "qa_dev.jsonl")}  # fmt: skip
                records = [r for r in half_of(load_qa(eval_dir / domain / "qa_dev.jsonl"), args.half) if golds[r.id]]
                records = records[: args.limit] if args.limit else records
                rows: dict[str, list[dict]] = {"oracle": [], "rag": []}
                ceiling = 0
                for record in records:
                    gold = golds[record.id]
                    assert gold is not None
                    passages[record.question] = gold
                    ceiling += metrics.contains(
                        (eval_dir / domain / "docs" / gold.source).read_text(encoding="utf-8"),
                        record.gold_answers,
                        answer_spans(record),
                    )
                    for name, comparison in (("oracle", oracle), ("rag", rag)):
                        if name not in methods:
                            continue
                        result = comparison.run(record.question, domain, ["rag"])["rag"]
                        row = scored(record, result)
                        rows[name].append(row)
                        if answers:
                            answers.write(json.dumps({"domain": domain, "id": record.id, "method": name,
                                                      "gold": record.gold_answers, **row}) + "\n")  # fmt: skip
                n = len(records)
                o, r = summary(rows["oracle"]), summary(rows["rag"])
                recall = sum(row["chunk_hit"] for row in rows["rag"]) / n if n and rows["rag"] else None
                out[domain] = {
                    "questions": n,
                    "oracle": o,
                    "rag": r,
                    "rag_over_oracle": {
                        "contains": ratio(r["contains"], o["contains"]),
                        "correct": ratio(r["correct"], o["correct"]),
                    },  # fmt: skip
                    "chunk_answer_recall": round(recall, 4) if recall is not None else None,
                    "answer_in_gold_document": round(ceiling / n, 4) if n else None,
                    "recall_over_ceiling": ratio(recall, ceiling / n if n else None),
                }
                print(json.dumps({domain: out[domain]}), file=sys.stderr, flush=True)
        finally:
            models.close()
            if answers:
                answers.close()
    print(
        json.dumps(
            {
                "benchmark": "oracle",
                "model": settings.local_model_alias if settings.rag.is_local else settings.rag.model,
                **run_facts(args, settings),
                "max_tokens": settings.max_tokens,
                "cpus": os.cpu_count(),
                "load_avg_end": os.getloadavg(),
                "seconds": round(time.perf_counter() - started, 1),
                "domains": out,
                "mean": {
                    f"{m}_{key}": round(statistics.mean(d[m][key] for d in out.values() if d[m][key] is not None), 4)
                    for m in methods
                    for key in ("contains", "correct")
                }
                if out
                else {},
            }
        )
    )


if __name__ == "__main__":
    main()
