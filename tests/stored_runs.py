"""Stored evaluation runs and adapter runs with chosen figures, written by Triptych's own code.

For tests of what is read back from TRIPTYCH_DATA_DIR (cost card, stakeholder page): each answer row
is made by the evaluation runner's `answer_row`, the summary by `summarize` and `compare_pipelines`,
exactly as a real run stores them; only the answers, timings and tokens are chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphs.registry import PIPELINES
from graphs.result import PipelineResult
from triptych import runstore
from triptych.documents.chunking import Chunk
from triptych.evaluate import store
from triptych.evaluate.runner import answer_row
from triptych.evaluate.scoring import summarize
from triptych.evaluate.uncertainty import compare_pipelines
from triptych.finetune import registry
from triptych.qa import QARecord
from triptych.settings import Settings


@dataclass(frozen=True)
class Answer:
    """One pipeline's answer to one question, with its measured figures."""

    text: str
    total_s: float | None = 1.0  # None: not measured
    queued_s: float = 0.0
    cpu_s: float | None = None  # None: not recorded (a remote endpoint, or an answer from before it was)
    prompt_tokens: int = 100
    completion_tokens: int = 10
    sources: tuple[Chunk, ...] = ()


def chunk(n: int, doc: str, text: str) -> Chunk:
    """A source as a RAG answer carries it."""
    return Chunk(chunk_id=f"{doc}-{n}", doc_id=f"{doc}.md", source=f"{doc}.md", title=doc.replace("_", " "), n=n,
                 score=0.8, text=text)  # fmt: skip


def write_eval_run(
    settings: Settings,
    domain: str,
    questions: list[QARecord],
    answers: dict[str, dict[str, Answer]],  # question id -> pipeline -> answer
    *,
    run_id: str | None = None,
    snapshot: dict[str, Any] | None = None,
) -> str:
    """A complete evaluation run of `domain` as the runner stores it; returns its id."""
    pipelines = list(next(iter(answers.values())))
    root = store.evals_dir(settings)
    run = store.RunDir(root / (run_id or runstore.new_run_id(domain, root)))
    run.path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "run_id": run.run_id, "domain": domain, "qa_file": "qa.jsonl", "split": "test",
        "question_ids": [q.id for q in questions], "pipelines": pipelines,
        "settings": snapshot if snapshot is not None else runstore.settings_snapshot(settings), "judge": None,
        "status": "complete", "created_at": store.now_iso(), "finished_at": store.now_iso(),
    }  # fmt: skip
    run.write_manifest(manifest)
    rows = []
    for q in questions:
        for pid, a in answers[q.id].items():
            result = PipelineResult(
                pipeline=pid, label=PIPELINES[pid].label, answer=a.text, model=f"model-{pid}", sources=list(a.sources),
                total_s=a.total_s, ttft_s=None if a.total_s is None else a.total_s / 2, queued_s=a.queued_s,
                cpu_s=a.cpu_s, prompt_tokens=a.prompt_tokens, completion_tokens=a.completion_tokens,
                finish_reason="stop",
            )  # fmt: skip
            docs = [s.doc_id.removesuffix(".md") for s in a.sources] if PIPELINES[pid].uses_retrieval else None
            rows.append(answer_row(q, domain, result, docs, None))
    run.append(rows)
    run.write_summary({
        "schema": store.SUMMARY_SCHEMA, "run_id": run.run_id, "status": "complete", "domain": domain,
        "qa_file": "qa.jsonl", "split": "test", "pipelines": pipelines, "questions": len(questions),
        "answered": len(rows), "created_at": manifest["created_at"], "finished_at": manifest["finished_at"],
        "settings": manifest["settings"], "judge": None, "metrics": summarize(rows, pipelines),
        "comparisons": compare_pipelines(rows, pipelines),
    })  # fmt: skip
    return run.run_id


def write_adapter_run(settings: Settings, domain: str, run_id: str, info: dict[str, Any]) -> None:
    """A finished local fine-tuning run with an adapter file, made the domain's active one."""
    registry.write_run(settings, run_id, {"run_id": run_id, "domain": domain, "kind": "local", "status": "done"} | info)
    (settings.runs_dir / run_id / registry.ADAPTER_FILE).write_bytes(b"GGUF")
    registry.activate(settings, domain, run_id)
