"""Evaluation runs on disk, and the functions the Scores page reads them with.

Layout: TRIPTYCH_DATA_DIR/evals/<run_id>/
    run.json       the manifest: what was asked (domain, QA file, split, question ids, pipelines),
                   the settings snapshot (triptych.runstore: only the names of key variables), a fingerprint
                   of both (a run with the same fingerprint is resumed), status and times
    answers.jsonl  one line per (question, pipeline), appended as each question finishes: the answer,
                   sources, timings, tokens, cost, error, `scores` (see scoring.py) and `judge`
    summary.json   the run's metrics (SUMMARY_SCHEMA below), rewritten after every finished run

summary.json (schema 1; keys are only ever added):
    schema          1
    run_id          e.g. "20261122-143501-hr_handbook" (runs made before: "hr_handbook-20261122-143501")
    status          "complete" | "partial" (interrupted, or questions still missing)
    domain          the index / demo domain the questions were asked against
    qa_file, split  where the questions came from (split null: every record of the file)
    pipelines       pipeline ids, in column order
    questions       gold questions in the run; answered: (question, pipeline) pairs stored
    created_at, finished_at   ISO-8601 UTC
    settings        the settings snapshot (as run.json)
    judge           the judge model, or null
    metrics         {pipeline: {...}}: questions, answered, errors, unavailable, answerable,
                    unanswerable, correct, exact_match, f1, contains, numeric, numeric_questions,
                    yes_no, refusal_accuracy, false_refusal_rate, hit@1, hit@3, hit@5, source_hit,
                    citation_rate, cited_holds_answer, ttft_s {median, p95, mean},
                    total_s {median, p95, mean}, prompt_tokens_mean, completion_tokens_mean,
                    tokens_total, cost_usd_total, cost_usd_per_answer, judge {judged, correct,
                    partially, wrong, score} or null, by_answer_type {type: {questions, correct,
                    contains, f1}}. Rates are 0-1 (null where no question applies); times in seconds.
                    Added later (absent in older runs: shown as "not recorded"): scored (answers that
                    were scored), correct_ci95 [low, high] (Wilson 95 % on `correct`), miss_causes
                    {cause: count} (scoring.MISS_CAUSES), and for pipelines with a fine-tuned adapter
                    by_training {adapter_runs, unseen {...}, seen {...}, not_recorded}: the same metrics
                    on questions the adapter was not / was trained on (training_overlap.py)
    comparisons     (added later) each pair of pipelines: a, b, questions ("unseen" or "all"), n,
                    left_out_seen, accuracy_a, accuracy_b, difference (a - b), ci95 (paired bootstrap),
                    only_a_right, only_b_right, mcnemar_p, bootstrap {resamples, seed}, verdict
                    (uncertainty.py)

An answers.jsonl line also holds (added later) adapter_run, seen_in_training (true / false / null for
pipelines without an adapter), miss_cause (null when right) and cpu_s (the CPU seconds the local model
servers used for the answer; null or absent: a remote endpoint, TRIPTYCH_LOCAL_CONCURRENCY > 1, or older).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triptych import runstore
from triptych.jsonl import read_jsonl
from triptych.settings import Settings

SUMMARY_SCHEMA = 1
MANIFEST = "run.json"
ANSWERS = "answers.jsonl"
SUMMARY = "summary.json"


class RunNotFoundError(LookupError):
    """No evaluation run with that id; the message says where runs are kept."""


def evals_dir(settings: Settings) -> Path:
    """Where evaluation runs are kept: TRIPTYCH_DATA_DIR/evals."""
    return settings.data_dir / "evals"


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# Settings that change how fast or where a run goes, not what it answers: a run may be continued
# with other values (e.g. a longer TRIPTYCH_PIPELINE_TIMEOUT_S after timeouts).
NOT_FINGERPRINTED = frozenset({
    "request_timeout_s", "pipeline_timeout_s", "local_concurrency", "local_host", "local_port", "local_threads",
    "local_startup_timeout_s", "chroma_host", "chroma_port", "max_upload_mb", "max_pdf_pages", "data_dir",
})  # fmt: skip


def fingerprint(manifest: dict[str, Any]) -> str:
    """What makes two runs the same experiment: questions, pipelines, domain and the settings that matter."""
    keys = ("domain", "qa_file", "split", "question_ids", "pipelines", "judge")
    what = {k: manifest.get(k) for k in keys}
    what["settings"] = {
        k: v
        for k, v in (manifest.get("settings") or {}).items()
        if k not in NOT_FINGERPRINTED and not k.startswith("finetune_")
    }
    if (manifest.get("setup") or {}).get("hash"):  # runs from before setups have none: their fingerprint stands
        what["setup_hash"] = manifest["setup"]["hash"]
    payload = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_answers(path: Path) -> list[dict[str, Any]]:
    """The answers of a run; a torn last line (the process died mid-write) is skipped."""
    if not path.is_file():
        return []
    return [obj for _, obj in read_jsonl(path)]


@dataclass
class RunDir:
    """One run's folder: its manifest, answers and summary."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def run_id(self) -> str:
        """The folder name."""
        return self.path.name

    def manifest(self) -> dict[str, Any]:
        """run.json."""
        return runstore.read_json(self.path / MANIFEST)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace run.json."""
        runstore.write_json(self.path / MANIFEST, manifest)

    def answers(self) -> list[dict[str, Any]]:
        """answers.jsonl, with a later line for the same (question, pipeline) replacing an earlier one."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in read_answers(self.path / ANSWERS):
            latest[(row["question_id"], row["pipeline"])] = row
        return list(latest.values())

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Add answers, flushed to disk at once (what an interrupted run keeps)."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path = self.path / ANSWERS
        with self._lock:
            if path.is_file() and path.stat().st_size:
                with path.open("rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":  # a torn last line: start on a fresh one
                        text = "\n" + text
            self._write(path, text)

    @staticmethod
    def _write(path: Path, text: str) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def summary(self) -> dict[str, Any] | None:
        """summary.json, or None if the run never finished once."""
        path = self.path / SUMMARY
        return runstore.read_json(path) if path.is_file() else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Replace summary.json."""
        runstore.write_json(self.path / SUMMARY, summary)


def open_run(settings: Settings, run_id: str) -> RunDir:
    """An existing run by id (RunNotFoundError naming where runs are)."""
    path = evals_dir(settings) / run_id
    if not (path / MANIFEST).is_file():
        raise RunNotFoundError(
            f"no evaluation run {run_id!r} in {evals_dir(settings)}; `triptych eval list` lists the runs"
        )
    return RunDir(path)


def find_resumable(settings: Settings, run_fingerprint: str) -> RunDir | None:
    """The newest unfinished run with this fingerprint, to continue where it stopped."""
    root = evals_dir(settings)
    if not root.is_dir():
        return None
    candidates = []
    for path in root.iterdir():
        try:
            manifest = runstore.read_json(path / MANIFEST)
        except (OSError, json.JSONDecodeError):
            continue
        if manifest.get("status") != "complete" and fingerprint(manifest) == run_fingerprint:
            candidates.append((manifest.get("created_at", ""), path))
    return RunDir(max(candidates)[1]) if candidates else None


# --- for the Scores page ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One run as the Scores page lists it; `metrics` is summary.json's `metrics` object."""

    run_id: str
    domain: str
    status: str
    created_at: str
    finished_at: str | None
    questions: int
    pipelines: list[str]
    metrics: dict[str, dict[str, Any]]
    path: Path
    comparisons: list[dict[str, Any]] | None = None  # None: not recorded (older runs)


@dataclass(frozen=True)
class LoadedRun:
    """A whole run: its summary.json (see the module docstring), manifest and every answer."""

    summary: dict[str, Any]
    manifest: dict[str, Any]
    answers: list[dict[str, Any]]


def list_runs(settings: Settings) -> list[RunSummary]:
    """Every evaluation run that has a summary, newest first."""
    root = evals_dir(settings)
    runs = []
    for path in root.iterdir() if root.is_dir() else ():
        summary_path = path / SUMMARY
        if not summary_path.is_file():
            continue
        try:
            s = runstore.read_json(summary_path)
        except (OSError, json.JSONDecodeError):
            continue
        runs.append(
            RunSummary(
                run_id=s["run_id"],
                domain=s["domain"],
                status=s["status"],
                created_at=s["created_at"],
                finished_at=s.get("finished_at"),
                questions=s["questions"],
                pipelines=list(s["pipelines"]),
                metrics=s["metrics"],
                path=path,
                comparisons=s.get("comparisons"),
            )
        )
    return sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)


def load_run(settings: Settings, run_id: str) -> LoadedRun:
    """A run's summary, manifest and answers (RunNotFoundError if there is no such run)."""
    run = open_run(settings, run_id)
    summary = run.summary()
    if summary is None:
        raise RunNotFoundError(f"run {run_id!r} has no summary yet: continue it with `triptych eval` first")
    return LoadedRun(summary=summary, manifest=run.manifest(), answers=run.answers())
