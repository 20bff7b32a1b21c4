"""Retrieval quality on the shared dev questions: vector, hybrid (BM25 + vector, RRF) and plain BM25.

For each domain of ../shared/eval (or TRIPTYCH_SHARED_EVAL) the documents are indexed in a
throw-away embedded Chroma folder with the configured chunking and embedding model. Each question
of qa_dev.jsonl is searched (50 chunks, no score threshold); documents are ranked by their best
chunk. recall@1 / recall@5: the gold document is first / among the first five documents; mrr: mean
of 1 / its rank (0 when absent from the 50 chunks). rag_hit: the gold document is among the chunks
the RAG pipeline would get with the configured top_k, min_score and focus_chunks. answer_recall: one of those
chunks contains a gold answer (normalised, whole words; every span of a multi-span answer), the
chunk-level figure that decides what the model can read; answer_ceiling: the share of questions
whose gold answer occurs in the gold document at all, which no retriever can beat, and
answer_recall_over_ceiling their ratio. `hybrid_unfocused`: hybrid without focus_chunks (the
document rankings are hybrid's). BM25 alone is the anchor row to beat. Prints one JSON object.

    TRIPTYCH_TOP_K=8 TRIPTYCH_CHUNK_SIZE=160 .venv/bin/python benchmarks/bench_retrieval.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._shared_eval import DOMAINS, questions, shared_eval_dir  # noqa: E402
from triptych.embeddings import load_embedder  # noqa: E402
from triptych.evaluate.metrics import contains  # noqa: E402
from triptych.index import DomainIndex, chroma_client  # noqa: E402
from triptych.ingest import ingest_paths  # noqa: E402
from triptych.retrieval import LexicalIndex, Retriever  # noqa: E402
from triptych.settings import Settings  # noqa: E402

DEPTH = 50


def doc_ranking(doc_ids: list[str]) -> list[str]:
    """Document stems in order of their best chunk."""
    seen: list[str] = []
    for doc_id in doc_ids:
        stem = PurePosixPath(doc_id).stem
        if stem not in seen:
            seen.append(stem)
    return seen


def scores(ranks: list[int | None], hits: list[bool], answers: list[bool], ceiling: float) -> dict[str, float | None]:
    n = len(ranks)
    recall = sum(answers) / n
    return {
        "recall@1": round(sum(r == 1 for r in ranks) / n, 4),
        "recall@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
        "rag_hit": round(sum(hits) / n, 4),
        "answer_recall": round(recall, 4),
        "answer_recall_over_ceiling": round(recall / ceiling, 4) if ceiling else None,
    }


def gold_answers(record: dict) -> tuple[list[str], list[str]]:
    """The gold answers and, for a multi-span answer, its spans (all of which must occur)."""
    golds = [a for a in [record.get("answer"), *(record.get("alt_answers") or [])] if a]
    spans = record.get("answer_list") or []
    return golds, [str(s) for s in spans] if len(spans) > 1 else []


def holds_answer(texts: list[str], record: dict) -> bool:
    golds, spans = gold_answers(record)
    return any(contains(t, golds, spans) for t in texts)


def main() -> None:
    eval_dir = shared_eval_dir()
    results: dict[str, dict] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        settings = Settings(_env_file=None, chroma_path=Path(tmp) / "indexes")  # type: ignore[call-arg]
        embedder = load_embedder(settings.embedding_model, settings.embedding_batch_size)
        client = chroma_client(settings)
        for domain in DOMAINS:
            docs = eval_dir / domain / "docs"
            report = ingest_paths(settings, domain, [docs], client=client, embedder=embedder)
            index = DomainIndex(client, domain, settings.embedding_model, create=False)
            bm25 = LexicalIndex(index.all_chunks())
            modes = {
                "vector": Retriever(index, embedder, top_k=DEPTH, min_score=-1.0, hybrid=False),
                "hybrid": Retriever(index, embedder, top_k=DEPTH, min_score=-1.0, hybrid=True),
            }
            given = {"top_k": settings.top_k, "min_score": settings.min_score, "focus": settings.focus_chunks}
            rag = {
                "vector": Retriever(index, embedder, hybrid=False, **given),
                "hybrid": Retriever(index, embedder, hybrid=True, **given),
                "hybrid_unfocused": Retriever(index, embedder, hybrid=True, **{**given, "focus": 0}),
            }
            rows = ("vector", "hybrid", "hybrid_unfocused", "bm25")
            ranks: dict[str, list[int | None]] = {mode: [] for mode in rows}
            hits: dict[str, list[bool]] = {mode: [] for mode in rows}
            answers: dict[str, list[bool]] = {mode: [] for mode in rows}
            qa = questions(eval_dir, domain)
            in_document = 0
            doc_of = {PurePosixPath(f).stem: f for f in index.versions()}
            for record in qa:
                gold = record["doc_ids"][0]
                in_document += gold in doc_of and holds_answer([index.document_text(doc_of[gold])], record)
                ranking = {m: doc_ranking([c.doc_id for c in r.search(record["question"])]) for m, r in modes.items()}
                for mode, retriever in rag.items():
                    ranked = ranking[mode.split("_")[0]]
                    ranks[mode].append(ranked.index(gold) + 1 if gold in ranked else None)
                    given = retriever.search(record["question"])
                    hits[mode].append(gold in doc_ranking([c.doc_id for c in given]))
                    answers[mode].append(holds_answer([c.text for c in given], record))
                by_words = [c for c, _ in bm25.search(record["question"], DEPTH)]
                ranked = doc_ranking([c.doc_id for c in by_words])
                ranks["bm25"].append(ranked.index(gold) + 1 if gold in ranked else None)
                hits["bm25"].append(gold in ranked[: settings.top_k])
                answers["bm25"].append(holds_answer([c.text for c in by_words[: settings.top_k]], record))
            ceiling = in_document / len(qa)
            results[domain] = {
                "questions": len(qa),
                "documents": len(report.stored),
                "chunks": report.chunks,
                "answer_ceiling": round(ceiling, 4),
                **{mode: scores(ranks[mode], hits[mode], answers[mode], ceiling) for mode in ranks},
            }
    print(
        json.dumps(
            {
                "benchmark": "retrieval",
                "embedding_model": settings.embedding_model,
                "chunk_size": settings.chunk_size,
                "chunk_overlap": settings.chunk_overlap,
                "rag_top_k": settings.top_k,
                "rag_min_score": settings.min_score,
                "rag_hybrid": settings.hybrid,
                "rag_focus_chunks": settings.focus_chunks,
                "depth_chunks": DEPTH,
                "seconds": round(time.perf_counter() - started, 1),
                "domains": results,
            }
        )
    )


if __name__ == "__main__":
    main()
