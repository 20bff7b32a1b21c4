"""Run gold questions through the pipelines, score every answer, store it as it comes, summarise.

Questions run a few at a time (`concurrency`); inside each question the pipelines run at once
through the comparison runner, so the local model's gate still applies. Each finished question is
appended to answers.jsonl before the next is counted, so an interrupted run loses at most the
questions in flight: running the same evaluation again (same questions, pipelines and settings)
finds the unfinished run and only asks what is missing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphs.compare import Comparison
from graphs.registry import get_spec
from graphs.result import PipelineResult
from triptych import runstore
from triptych.bridge import run_relaying
from triptych.evaluate import store
from triptych.evaluate.judge import Judge
from triptych.evaluate.metrics import doc_stem
from triptych.evaluate.scoring import miss_cause, score_answer, summarize
from triptych.evaluate.training_overlap import TrainingOverlap
from triptych.evaluate.uncertainty import compare_pipelines
from triptych.qa import QARecord

RETRIEVAL_DEPTH = 5  # chunks searched for hit@1/3/5
CANCEL_POLL_S = 0.1


class EvaluationCancelled(Exception):
    """The run was cancelled (its `cancel` event was set); what it finished is kept, and it can be continued."""


@dataclass(frozen=True)
class Progress:
    """Reported after each question: `done` of `total` questions of this run are finished."""

    done: int
    total: int
    question_id: str
    results: dict[str, str]  # pipeline -> "ok" | "error" | "unavailable"


@dataclass
class EvalOutcome:
    """What `run_eval` did: the run, its summary, and how many questions it asked now."""

    run: store.RunDir
    summary: dict[str, Any]
    asked: int
    resumed: bool


def status_of(result: PipelineResult) -> str:
    """ok, error, or unavailable (the pipeline explained it cannot answer, e.g. no adapter yet)."""
    if result.error:
        return "error"
    if not result.answer and result.notice:
        return "unavailable"
    return "ok"


def answer_row(
    record: QARecord,
    domain: str,
    result: PipelineResult,
    retrieved_docs: list[str] | None,
    judge: dict[str, str] | None,
    *,
    adapter_run: str | None = None,
    seen_in_training: bool | None = None,
) -> dict[str, Any]:
    """One line of answers.jsonl; `adapter_run` / `seen_in_training` only for a pipeline with an adapter."""
    status = status_of(result)
    sources = [s.to_dict() for s in result.sources]
    spec = get_spec(result.pipeline)
    docs = retrieved_docs if spec.uses_retrieval and status != "unavailable" else None
    scores = score_answer(record, status=status, answer=result.answer, sources=sources, retrieved_docs=docs)
    if status == "unavailable":
        adapter_run, seen_in_training = None, None
    return {
        "question_id": record.id,
        "domain": domain,
        "question": record.question,
        "answer_type": record.answer_type,
        "answerable": record.answerable,
        "gold": record.gold_answers,
        "gold_doc_ids": list(record.doc_ids),
        "status": status,
        # the result as the history keeps it, less the label, the prompt and setup time (not the answer's)
        **result.to_dict(exclude=("label", "messages", "setup_s")),
        "retrieved_doc_ids": docs,
        "scores": scores,
        "adapter_run": adapter_run,
        "seen_in_training": seen_in_training,
        "miss_cause": miss_cause(
            record,
            uses_retrieval=spec.uses_retrieval,
            uses_adapter=spec.uses_adapter,
            status=status,
            scores=scores,
            sources=sources,
            seen_in_training=seen_in_training,
        ),
        "judge": judge,
        "finished_at": store.now_iso(),
    }


class Evaluation:
    """Evaluates gold questions of one domain with a comparison runner (real or with fakes)."""

    def __init__(self, comparison: Comparison, *, judge: Judge | None = None, concurrency: int = 1) -> None:
        self.comparison = comparison
        self.settings = comparison.settings
        self.judge = judge
        self.concurrency = max(1, concurrency)

    def manifest(
        self, domain: str, records: Sequence[QARecord], pipelines: Sequence[str], qa_file: str | None,
        split: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        """What this evaluation is (before it has a run id)."""
        manifest: dict[str, Any] = {
            "domain": domain,
            "qa_file": qa_file,
            "split": split,
            "question_ids": [r.id for r in records],
            "pipelines": list(pipelines),
            "settings": runstore.settings_snapshot(self.settings),
            "judge": self.judge.endpoint.model if self.judge else None,
            # the setup the pipelines answered under (name, content hash, and its prompts and knobs in full)
            "setup": self.setup_record(),
        }
        manifest["fingerprint"] = store.fingerprint(manifest)
        return manifest

    def setup_record(self) -> dict[str, Any]:
        """The runner's setup ('default' when none was given) as a manifest keeps it."""
        from triptych.setups import default_setup

        setup = self.comparison.setup or default_setup(self.comparison.base_settings)
        return setup.ref() | {"setup": setup.model_dump(mode="json")}

    def run(
        self,
        domain: str,
        records: Sequence[QARecord],
        pipelines: Sequence[str],
        *,
        qa_file: str | None = None,
        split: str | None = None,
        run_id: str | None = None,
        fresh: bool = False,
        retry_errors: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        on_start: Callable[[store.RunDir, int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> EvalOutcome:
        """Ask every question not yet answered in this run, store and score the answers, write the summary.

        The run is `run_id` if given (continued if it exists), else the newest unfinished run of the
        same evaluation (unless `fresh`), else a new one. `on_start(run, already_done, total)` is
        called once the run is known; `on_progress` after each question (in the caller's thread).
        Setting `cancel` stops the questions in flight and raises EvaluationCancelled (the run is partial).
        """
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            raise ValueError("the QA file repeats question ids; each question needs its own id")
        manifest = self.manifest(domain, records, pipelines, qa_file, split)
        root = store.evals_dir(self.settings)
        run: store.RunDir | None = None
        if run_id is not None and (root / run_id / store.MANIFEST).is_file():
            run = store.RunDir(root / run_id)
            old = run.manifest()
            if store.fingerprint(old) != manifest["fingerprint"]:
                raise ValueError(
                    f"run {run_id!r} asked other questions, pipelines or settings; start a new run "
                    "(leave out --run-id) or evaluate exactly what it did"
                )
        elif run_id is None and not fresh:
            run = store.find_resumable(self.settings, manifest["fingerprint"])
        resumed = run is not None
        if run is None:
            run = store.RunDir(root / (run_id or runstore.new_run_id(domain, root, claim=True)))
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_manifest({"run_id": run.run_id, **manifest, "status": "running", "created_at": store.now_iso()})
        else:
            run.write_manifest(run.manifest() | {"status": "running"})
        overlap = TrainingOverlap(self.settings, domain, list(pipelines))
        run.write_manifest(run.manifest() | {"adapter_runs": {p: r for p, r in overlap.runs.items() if r}})

        done = {
            (a["question_id"], a["pipeline"]) for a in run.answers() if not (retry_errors and a["status"] == "error")
        }
        todo = [(r, [p for p in pipelines if (r.id, p) not in done]) for r in records]
        todo = [(r, ps) for r, ps in todo if ps]
        already = len(records) - len(todo)
        if on_start is not None:
            on_start(run, already, len(records))
        try:
            run_relaying(
                lambda report: self._ask_all(run, domain, todo, already, len(records), overlap, report, cancel),
                on_progress,
            )
        except BaseException:
            self.finish(run, status="partial")
            raise
        summary = self.finish(run)
        return EvalOutcome(run=run, summary=summary, asked=len(todo), resumed=resumed)

    async def _ask_all(
        self, run: store.RunDir, domain: str, todo: list[tuple[QARecord, list[str]]], done: int, total: int,
        overlap: TrainingOverlap, report: Callable[[Progress], None], cancel: threading.Event | None = None,
    ) -> None:  # fmt: skip
        gate = asyncio.Semaphore(self.concurrency)
        counter = {"done": done}

        async def one(record: QARecord, pipelines: list[str]) -> None:
            async with gate:
                results = await self.comparison.arun(record.question, domain, pipelines, eval_run=run.run_id)
                retrieved = None
                if any(get_spec(p).uses_retrieval for p in pipelines):
                    retrieved = await asyncio.to_thread(self._retrieve, domain, record.question)
                rows = []
                for result in results.values():
                    verdict = None
                    if self.judge is not None and status_of(result) == "ok":
                        graded = await asyncio.to_thread(
                            self.judge.grade, record.question, record.gold_answers if record.answerable else [],
                            result.answer,
                        )  # fmt: skip
                        verdict = graded.to_dict()
                    rows.append(
                        answer_row(
                            record,
                            domain,
                            result,
                            retrieved,
                            verdict,
                            adapter_run=overlap.runs.get(result.pipeline),
                            seen_in_training=overlap.seen(result.pipeline, record),
                        )
                    )
                run.append(rows)
                counter["done"] += 1
                report(Progress(counter["done"], total, record.id, {r["pipeline"]: r["status"] for r in rows}))

        async def watch(event: threading.Event) -> None:
            while not event.is_set():
                await asyncio.sleep(CANCEL_POLL_S)
            raise EvaluationCancelled(f"cancelled after {counter['done']} of {total} questions")

        tasks = [asyncio.create_task(one(r, ps)) for r, ps in todo]
        watcher = asyncio.create_task(watch(cancel)) if cancel is not None else None
        everything = asyncio.gather(*tasks)
        try:
            if watcher is None:
                await everything
            else:
                await asyncio.wait({everything, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    watcher.result()  # raises EvaluationCancelled
                await everything
        finally:
            everything.cancel()  # first, so the gathering future ends cancelled, not with an unread error
            for task in [*tasks, *([watcher] if watcher else [])]:
                task.cancel()

    def _retrieve(self, domain: str, question: str) -> list[str] | None:
        """The document of each of the top chunks for the question, best first (hit@k), None without an index."""
        try:
            retriever = self.comparison.retriever(domain)
        except Exception:  # noqa: BLE001 - the RAG column reports the missing index itself
            return None
        if retriever is None:
            return None
        return [doc_stem(c.doc_id) for c in retriever.search(question, RETRIEVAL_DEPTH)]

    def finish(self, run: store.RunDir, status: str | None = None) -> dict[str, Any]:
        """Write summary.json (and the manifest's status) from what answers.jsonl holds now."""
        manifest = run.manifest()
        answers = run.answers()
        wanted = {(q, p) for q in manifest["question_ids"] for p in manifest["pipelines"]}
        stored = [a for a in answers if (a["question_id"], a["pipeline"]) in wanted]
        if status is None:
            status = "complete" if len(stored) == len(wanted) else "partial"
        finished = store.now_iso()
        run.write_manifest(manifest | {"status": status, "finished_at": finished})
        summary = {
            "schema": store.SUMMARY_SCHEMA,
            "run_id": run.run_id,
            "status": status,
            "domain": manifest["domain"],
            "qa_file": manifest["qa_file"],
            "split": manifest["split"],
            "pipelines": manifest["pipelines"],
            "questions": len(manifest["question_ids"]),
            "answered": len(stored),
            "created_at": manifest["created_at"],
            "finished_at": finished,
            "settings": manifest["settings"],
            "judge": manifest.get("judge"),
            "setup": {k: v for k, v in (manifest.get("setup") or {}).items() if k in ("name", "hash")} or None,
            "metrics": summarize(stored, manifest["pipelines"]),
            "comparisons": compare_pipelines(stored, manifest["pipelines"]),
        }
        run.write_summary(summary)
        return summary


def qa_file_label(path: Path) -> str:
    """How a QA file is named in a run: its absolute path."""
    return str(path.resolve())
