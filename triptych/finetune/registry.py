"""Fine-tuning runs, and which one is active per domain.

Layout under TRIPTYCH_DATA_DIR/runs: one folder per run (its id from triptych.runstore) with
`run.json` (domain, kind, config, metrics); a local run holds `adapter.gguf` for the embedded server
and `adapter/` (the PEFT folder, portable to vLLM), a hosted run the `ft:` model id of its OpenAI
job. `active.json` maps each domain to its active local run, `hosted.json` to its active hosted run.
Read-modify-writes of these files and of run.json hold `.registry.lock`, a lock across processes
(the app, its training worker and the CLI may write at once).

A run trained by the training worker records `corpus_sha256`, the hash of the domain's corpus folder
it learned from; when the folder changes, the domain's adapter is stale and the app offers a retrain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from triptych import runstore
from triptych.settings import Settings

ACTIVE_FILE = "active.json"
PASSAGES_FILE = "active_with_passages.json"  # each domain's active with-passages run (the hybrid column's)
CLOSED_BOOK, WITH_PASSAGES = "closed-book", "with-passages"  # a run's `mode` (triptych.finetune.with_passages)
HOSTED_FILE = "hosted.json"
ADAPTER_FILE = "adapter.gguf"
RUN_FILE = "run.json"
LOCK_FILE = ".registry.lock"


@dataclass(frozen=True)
class ActiveAdapter:
    """The adapter the fine-tuned column uses for a domain."""

    domain: str
    run_id: str
    gguf_path: Path
    mode: str = CLOSED_BOOK  # how it was trained: the question alone, or with retrieved passages

    @property
    def alias(self) -> str:
        """The model name the embedded server serves it under."""
        return f"ft-{self.domain}-{self.run_id}"


@contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """Hold the registry's cross-process lock (re-entrant within a thread)."""
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.runs_dir / LOCK_FILE), is_singleton=True):
        yield


def _active_map(runs_dir: Path, name: str = ACTIVE_FILE) -> dict[str, str]:
    path = runs_dir / name
    if not path.is_file():
        return {}
    return {str(k): str(v) for k, v in runstore.read_json(path).items()}


def active_adapter(settings: Settings, domain: str, mode: str = CLOSED_BOOK) -> ActiveAdapter | None:
    """The active adapter of a domain trained in `mode`, or None when none was trained and activated."""
    run_id = _active_map(settings.runs_dir, PASSAGES_FILE if mode == WITH_PASSAGES else ACTIVE_FILE).get(domain)
    if run_id is None:
        return None
    path = settings.runs_dir / run_id / ADAPTER_FILE
    return ActiveAdapter(domain, run_id, path, mode) if path.is_file() else None


def has_passages_adapter(settings: Settings, domain: str | None = None) -> bool:
    """Whether a with-passages adapter is active for `domain` (None: for any domain)."""
    if domain is not None:
        return active_adapter(settings, domain, WITH_PASSAGES) is not None
    return any(active_adapter(settings, d, WITH_PASSAGES) for d in _active_map(settings.runs_dir, PASSAGES_FILE))


def activate(settings: Settings, domain: str, run_id: str) -> ActiveAdapter:
    """Make a run's adapter the domain's active one (written atomically).

    A hosted run (an OpenAI `ft:` model, no adapter file) becomes the domain's hosted model instead;
    the returned ActiveAdapter's gguf_path then does not exist. A run trained with passages becomes
    the domain's with-passages adapter (the hybrid column's); the fine-tuned column keeps its own.
    """
    path = settings.runs_dir / run_id / ADAPTER_FILE
    info = read_run(settings, run_id)
    mode = str((info or {}).get("mode", CLOSED_BOOK))
    name = HOSTED_FILE if info is not None and info.get("hosted_model") and not path.is_file() else ACTIVE_FILE
    if name == ACTIVE_FILE and mode == WITH_PASSAGES:
        name = PASSAGES_FILE
    if name == ACTIVE_FILE and not path.is_file():
        raise FileNotFoundError(f"run {run_id!r} has no {ADAPTER_FILE} under {settings.runs_dir}")
    with locked(settings):
        _write_map(settings.runs_dir, name, _active_map(settings.runs_dir, name) | {domain: run_id})
    return ActiveAdapter(domain, run_id, path, mode)


def _write_map(runs_dir: Path, name: str, mapping: dict[str, str]) -> None:
    runstore.write_json(runs_dir / name, mapping, sort_keys=True)


def write_run(settings: Settings, run_id: str, info: dict[str, Any]) -> Path:
    """Write (replace) a run's run.json, atomically."""
    return runstore.write_json(settings.runs_dir / run_id / RUN_FILE, info)


def read_run(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """A run's run.json, or None."""
    path = settings.runs_dir / run_id / RUN_FILE
    return runstore.read_json(path) if path.is_file() else None


def corpus_sha256(settings: Settings, domain: str) -> str | None:
    """The hash of every file's path and bytes under corpora_dir/<domain> (documents and QA); None if absent."""
    folder = settings.corpora_dir / domain
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def record_corpus(settings: Settings, run_id: str, sha256: str | None) -> None:
    """Note in run.json the corpus hash the run learned from (under the registry lock)."""
    with locked(settings):
        info = read_run(settings, run_id)
        if info is not None:
            write_run(settings, run_id, info | {"corpus_sha256": sha256})


def missing_adapter_notice(settings: Settings, domain: str) -> str:
    """What the fine-tuned column says for a domain without an adapter: its training's progress, or how to train it."""
    from triptych.finetune.worker import read_status

    job = read_status(settings, domain)
    if job is not None and (job.active or job.status == "failed"):
        return job.describe()
    return f"not fine-tuned yet: run `triptych finetune --domain {domain}`"


def is_stale(settings: Settings, domain: str) -> bool:
    """Whether the domain's active adapter learned from a corpus that has changed since (False when unknown)."""
    adapter = active_adapter(settings, domain)
    info = read_run(settings, adapter.run_id) if adapter else None
    trained_on = info.get("corpus_sha256") if info else None
    return bool(trained_on) and trained_on != corpus_sha256(settings, domain)


@dataclass(frozen=True)
class RunSummary:
    """One line of `triptych finetune status`."""

    run_id: str
    domain: str
    kind: str  # local | openai
    status: str
    active: bool
    info: dict[str, Any]  # run.json

    @property
    def mode(self) -> str:
        """closed-book or with-passages (runs from before modes existed: closed-book)."""
        return str(self.info.get("mode", CLOSED_BOOK))

    @property
    def steps(self) -> int | None:
        """Training steps taken (None before training)."""
        return (self.info.get("training") or {}).get("steps")

    @property
    def test_contains_after(self) -> float | None:
        """'contains' (%) of the fine-tuned model on the held-out test questions, if it was scored."""
        return ((self.info.get("accuracy_after") or {}).get("test") or {}).get("contains")

    @property
    def wall_s(self) -> float | None:
        """How long the whole run took (seconds), once finished."""
        return self.info.get("wall_s")

    @property
    def training_source(self) -> str:
        """How many examples the run trained on, and where they came from ('' when unknown)."""
        ts = self.info.get("training_set") or {}
        if not ts:
            return ""
        gen = ts.get("generator") or {"kind": "gold-qa"}
        kind = gen.get("kind")
        label = {"gold-qa": "gold QA", "extractive": "from documents (extractive)"}.get(kind, kind)
        if kind == "llm":
            label = f"written by {gen.get('model')}"
        return f"{ts.get('examples', '?')} · {label}"


def list_runs(settings: Settings) -> list[RunSummary]:
    """Every run under runs_dir, oldest first, marking the active one of each domain."""
    runs_dir = settings.runs_dir
    active = {
        pair for name in (ACTIVE_FILE, HOSTED_FILE, PASSAGES_FILE) for pair in _active_map(runs_dir, name).items()
    }
    out = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
        info = read_run(settings, folder.name)
        if info is None:
            continue
        domain = str(info.get("domain", ""))
        out.append(
            RunSummary(
                folder.name,
                domain,
                str(info.get("kind", "local")),
                str(info.get("status", "unknown")),
                (domain, folder.name) in active,
                info,
            )
        )
    return out


def hosted_model(settings: Settings, domain: str) -> str | None:
    """The domain's active hosted fine-tuned model id (`ft:...`), or None."""
    run_id = _active_map(settings.runs_dir, HOSTED_FILE).get(domain)
    info = read_run(settings, run_id) if run_id else None
    model = info.get("hosted_model") if info else None
    return str(model) if model else None
