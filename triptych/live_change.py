"""Change a fact, live: edit the sentence that holds an answer, re-index that one document, ask again.

The central trade-off between RAG and fine-tuning is knowledge that changes. A change replaces one
sentence of one document (`FactChange`): the original bytes are kept, the new version is written
and indexed in place of the old one (only that document is re-embedded), and `undo_change` puts the
original back, in the files and in the index. Each demo corpus ships one scripted change in
`corpora/<domain>/live_change.json` (a `FactChange` as JSON) so the moment works in one click.

Nothing is lost on a restart. Under `TRIPTYCH_DATA_DIR/live_changes/`:

- `<domain>.json`: the domain's active change (at most one), written before the index is touched;
- `<domain>/<sha256><ext>`: the original and the changed bytes of its document;
- `races.jsonl`: one line per race (see `race_record`), read by the stakeholder report.

The demo corpora are indexed again at every start; `with_active_changes` makes that indexing use
the changed bytes of a changed document, so the change survives a restart and Undo still works.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Protocol

from chromadb.api import ClientAPI

from graphs.result import PipelineResult
from triptych import runstore
from triptych.embeddings import Embedder, load_embedder
from triptych.evaluate.metrics import contains, without_citations
from triptych.index import DomainIndex, IndexNotFoundError, check_domain, open_index
from triptych.ingest import SourceFile, chunking_from, content_hash, ingest_sources
from triptych.jsonl import read_jsonl
from triptych.originals import discard_original, keep_original, originals_dir
from triptych.settings import Settings

log = logging.getLogger(__name__)

SCRIPT_FILE = "live_change.json"  # corpora/<domain>/live_change.json
RACES_FILE = "races.jsonl"
RACE_FORMAT = 1
TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")  # edited as bytes: the sentence is found as written


class ChangeError(ValueError):
    """A change that cannot be made as asked; the message says what to do instead."""


@dataclass(frozen=True)
class FactChange:
    """One sentence of one document replaced, and the question whose answer it holds."""

    doc_id: str  # the document's id in the domain's index (its path under docs/ for a demo corpus)
    old_text: str  # the sentence as it is written in the document (exactly once)
    new_text: str
    question: str
    old_answer: str = ""  # what a column answering from the old fact says (marks the answers; optional)
    new_answer: str = ""

    def checked(self) -> FactChange:
        """This change, or a ChangeError naming the field to fix."""
        for name in ("doc_id", "old_text", "new_text", "question"):
            if not str(getattr(self, name)).strip():
                raise ChangeError(f"a fact change needs {name.replace('_', ' ')}: fill it in")
        if self.old_text == self.new_text:
            raise ChangeError("the new sentence is the same as the old one: edit it first")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FactChange:
        """From JSON; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in names}).checked()


@dataclass(frozen=True)
class ActiveChange:
    """A change in force for a domain, as `<domain>.json` records it."""

    domain: str
    change: FactChange
    source: str  # the document's file name (its display name)
    original_file: str  # under live_changes/<domain>/: the bytes before the change
    changed_file: str  # the bytes after it
    kept_original: bool  # the document is an upload whose original is kept in originals/ (not a demo file)
    applied_at: str
    status: str = "applying"  # applying (written before indexing) | applied
    reindex_s: float | None = None  # seconds to index the changed document (parse, chunk, embed, store)
    chunks_before: int | None = None
    chunks_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActiveChange:
        """From `<domain>.json`."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["change"] = FactChange.from_dict(data["change"])
        return cls(**values)


@dataclass(frozen=True)
class UndoResult:
    """What Undo did: the document it restored and how long re-indexing it took."""

    domain: str
    doc_id: str
    reindex_s: float
    chunks: int


# --- where things are kept --------------------------------------------------------------------------


def changes_dir(settings: Settings) -> Path:
    """TRIPTYCH_DATA_DIR/live_changes."""
    return settings.data_dir / "live_changes"


def races_path(settings: Settings) -> Path:
    """The JSON-lines file of every race (TRIPTYCH_DATA_DIR/live_changes/races.jsonl)."""
    return changes_dir(settings) / RACES_FILE


def _record_path(settings: Settings, domain: str) -> Path:
    return changes_dir(settings) / f"{check_domain(domain)}.json"


def _bytes_dir(settings: Settings, domain: str) -> Path:
    return changes_dir(settings) / check_domain(domain)


def scripted_change(corpora_dir: Path, domain: str) -> FactChange | None:
    """The demo corpus's scripted change (`corpora/<domain>/live_change.json`), or None when it has none."""
    path = corpora_dir / domain / SCRIPT_FILE
    if not path.is_file():
        return None
    try:
        return FactChange.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ChangeError(f"{path} is not a valid scripted change ({exc}): fix or delete it") from None


def active_change(settings: Settings, domain: str) -> ActiveChange | None:
    """The domain's change in force, or None."""
    path = _record_path(settings, domain)
    if not path.is_file():
        return None
    try:
        return ActiveChange.from_dict(runstore.read_json(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChangeError(
            f"the change record {path} is unreadable ({exc}): restore it, or delete it to forget it"
        ) from None


# --- applying and undoing ---------------------------------------------------------------------------


def original_bytes(settings: Settings, index: DomainIndex, doc_id: str) -> tuple[str, bytes, bool]:
    """(file name, bytes, kept in originals/) of an indexed document: its demo corpus file or its kept upload."""
    record = index.document(doc_id)
    if record is None:
        raise ChangeError(f"no document {doc_id!r} in {index.domain}: pick one of its documents")
    if record.original:
        path = originals_dir(settings, index.domain) / record.original
        if path.is_file():
            return record.source, path.read_bytes(), True
    demo = settings.corpora_dir / index.domain / "docs" / doc_id
    if demo.is_file():
        return record.source, demo.read_bytes(), False
    raise ChangeError(
        f"the original file of {doc_id} is not kept: upload it again on the Documents page, then change it"
    )


def changed_bytes(name: str, data: bytes, old_text: str, new_text: str) -> bytes:
    """The document with the sentence replaced; ChangeError unless it is a text file holding the sentence once."""
    if PurePath(name).suffix.lower() not in TEXT_SUFFIXES:
        raise ChangeError(
            f"{name} is not a text document ({', '.join(TEXT_SUFFIXES)}): its sentences cannot be edited in place; "
            "pick a Markdown, text or HTML document"
        )
    old, new = old_text.encode("utf-8"), new_text.encode("utf-8")
    found = data.count(old)
    if found != 1:
        where = "does not occur" if not found else f"occurs {found} times"
        raise ChangeError(
            f"the sentence {old_text!r} {where} in {name}: copy it exactly as written in the document"
            + (" (one line)" if not found else ", with enough words around it to be unique")
        )
    return data.replace(old, new)


def apply_change(
    settings: Settings,
    domain: str,
    change: FactChange,
    *,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> ActiveChange:
    """Write the new version of the document and re-index it alone; the original is kept for Undo.

    One change per domain at a time (undo it first). The record is written before the index is
    touched, so a crash leaves a change that Undo can still take back.
    """
    change = change.checked()
    if active_change(settings, domain) is not None:
        raise ChangeError(f"{domain} already has a changed fact: undo it first")
    try:
        index = open_index(settings, check_domain(domain), client=client)
    except IndexNotFoundError as exc:
        raise ChangeError(str(exc)) from None
    with index.write_lock():
        source, data, kept = original_bytes(settings, index, change.doc_id)
        new_data = changed_bytes(source, data, change.old_text, change.new_text)
        folder = _bytes_dir(settings, domain)
        original_file, _ = keep_original(folder, content_hash(data), source, data)
        changed_file, _ = keep_original(folder, content_hash(new_data), source, new_data)
        before = index.document(change.doc_id)
        active = ActiveChange(
            domain, change, source, original_file, changed_file, kept,
            applied_at=datetime.now(UTC).isoformat(timespec="seconds"),
            chunks_before=before.chunks if before else None,
        )  # fmt: skip
        runstore.write_json(_record_path(settings, domain), active.to_dict())
        try:
            seconds, chunks = _reindex(settings, index, change.doc_id, source, new_data, kept, embedder)
        except BaseException:
            _forget(settings, active)
            raise
        active = replace(active, status="applied", reindex_s=round(seconds, 3), chunks_after=chunks)
        runstore.write_json(_record_path(settings, domain), active.to_dict())
    return active


def undo_change(
    settings: Settings, domain: str, *, client: ClientAPI | None = None, embedder: Embedder | None = None
) -> UndoResult:
    """Put the original document back, in the index too, and forget the change."""
    active = active_change(settings, domain)
    if active is None:
        raise ChangeError(f"{domain} has no changed fact to undo")
    path = _bytes_dir(settings, domain) / active.original_file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChangeError(
            f"the original of {active.source} is missing ({exc}): restore {path} and undo again"
        ) from None
    index = open_index(settings, check_domain(domain), client=client)
    with index.write_lock():
        seconds, chunks = _reindex(settings, index, active.change.doc_id, active.source, data, active.kept_original,
                                   embedder)  # fmt: skip
        _forget(settings, active)
    return UndoResult(domain, active.change.doc_id, round(seconds, 3), chunks)


def _reindex(
    settings: Settings,
    index: DomainIndex,
    doc_id: str,
    name: str,
    data: bytes,
    kept: bool,
    embedder: Embedder | None,
) -> tuple[float, int]:
    """Index one document's bytes in place of its current version; (seconds, chunks), ChangeError if refused."""
    from triptych.documents.validation import Limits

    embedder = embedder or load_embedder(settings.embedding_model, settings.embedding_batch_size)
    started = time.perf_counter()
    report = ingest_sources(
        index,
        embedder,
        [SourceFile.from_bytes(name, data, doc_id=doc_id)],
        limits=Limits.from_settings(settings),
        chunking=chunking_from(settings, embedder),
        originals=originals_dir(settings, index.domain) if kept else None,
    )
    seconds = time.perf_counter() - started
    outcome = report.outcomes[0]
    if outcome.status == "refused":
        raise ChangeError(f"{name} could not be indexed: {outcome.reason}")
    record = index.document(doc_id)
    return seconds, record.chunks if record else 0


def _forget(settings: Settings, active: ActiveChange) -> None:
    """Remove a change's record and kept bytes (the record first: a crash in between leaves only files)."""
    _record_path(settings, active.domain).unlink(missing_ok=True)
    folder = _bytes_dir(settings, active.domain)
    for name in {active.original_file, active.changed_file}:
        discard_original(folder, name)


def with_active_changes(settings: Settings, domain: str, sources: Sequence[SourceFile]) -> list[SourceFile]:
    """A demo corpus's files as they are in force: a changed document's changed bytes instead of its file.

    Used when the demo indexes are brought up to date at start, so that a restart keeps the change.
    """
    try:
        active = active_change(settings, domain)
    except ChangeError as exc:
        log.warning("%s", exc)
        return list(sources)
    if active is None:
        return list(sources)
    path = _bytes_dir(settings, domain) / active.changed_file
    if not path.is_file():
        log.warning("the changed version of %s is missing (%s): the original is indexed", active.source, path)
        return list(sources)
    return [
        SourceFile(s.doc_id, s.name, path=path) if s.doc_id == active.change.doc_id else s for s in sources
    ]  # fmt: skip


def changed_documents(settings: Settings, domain: str, files: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(name, bytes) of a demo corpus's documents with the changed one's new bytes (what a retrain reads)."""
    active = active_change(settings, domain)
    if active is None or active.kept_original:  # an upload's changed bytes are its kept original already
        return list(files)
    original = (_bytes_dir(settings, domain) / active.original_file).read_bytes()
    new = (_bytes_dir(settings, domain) / active.changed_file).read_bytes()
    return [(n, new if n == active.source and d == original else d) for n, d in files]


# --- what retraining the fine-tuned column would take -----------------------------------------------


@dataclass(frozen=True)
class RetrainEstimate:
    """The time (and cost, where priced) to retrain a domain's adapter, from that adapter's own run."""

    run_id: str
    kind: str  # local | openai
    s_per_step: float | None = None
    steps: int | None = None
    train_s: float | None = None  # s/step x steps
    run_wall_s: float | None = None  # the whole run: training set, base model, steps, scoring, conversion
    trained_tokens: int | None = None  # hosted
    cost_usd: float | None = None
    price_note: str = ""  # where the cost comes from, or why there is none

    def describe(self) -> str:
        """One line for the fine-tuned column."""
        if self.kind == "local" and self.train_s is not None:
            line = f"retraining takes {self.s_per_step:.2f} s/step × {self.steps} steps = {self.train_s:.0f} s"
            if self.run_wall_s:
                line += f" of training ({self.run_wall_s:.0f} s for the whole run)"
        elif self.trained_tokens:
            line = f"retraining trains {self.trained_tokens:,} tokens on the hosted service"
        else:
            line = "retraining time unknown: its run recorded no training steps"
        if self.cost_usd is not None:
            line += f", about ${self.cost_usd:.4f}"
        return line + f" (measured from run {self.run_id}" + (f"; {self.price_note}" if self.price_note else "") + ")"


def retrain_estimate(settings: Settings, domain: str) -> RetrainEstimate | None:
    """From the domain's active adapter's run.json (local), else its hosted run; None when it has neither."""
    from triptych.finetune import registry

    adapter = registry.active_adapter(settings, domain)
    run_id = adapter.run_id if adapter else _hosted_run_id(settings, domain)
    info = registry.read_run(settings, run_id) if run_id else None
    if not run_id or info is None:
        return None
    training = info.get("training") or {}
    s_per_step, steps = training.get("s_per_step"), training.get("total_steps") or training.get("steps")
    train_s = round(float(s_per_step) * int(steps), 1) if s_per_step and steps else None
    tokens = info.get("trained_tokens")
    cost, note = None, ""
    # Prices come from the cost settings (TRIPTYCH_COST_*), where this copy of Triptych has them.
    machine = getattr(settings, "cost_machine_usd_per_hour", None)
    hosted = getattr(settings, "cost_hosted_training_usd_per_1k", None)
    if tokens and hosted is not None:
        cost, note = round(int(tokens) / 1000 * float(hosted), 4), "hosted training tokens × price"
    elif train_s is not None and machine is not None:
        cost, note = round(train_s / 3600 * float(machine), 4), "training time × machine price"
    elif train_s is not None:
        note = "on this machine: no per-token charge"
    wall = info.get("wall_s")
    return RetrainEstimate(
        run_id, str(info.get("kind", "local")), float(s_per_step) if s_per_step else None,
        int(steps) if steps else None, train_s, float(wall) if wall else None,
        int(tokens) if tokens else None, cost, note,
    )  # fmt: skip


def _hosted_run_id(settings: Settings, domain: str) -> str | None:
    from triptych.finetune import registry

    path = settings.runs_dir / registry.HOSTED_FILE
    return str(runstore.read_json(path).get(domain) or "") or None if path.is_file() else None


# --- the race -------------------------------------------------------------------------------------


class Asker(Protocol):
    """What asks the columns: graphs.compare.Comparison (its `run` and `forget_retriever`)."""

    def run(self, question: str, domain: str | None = None, pipelines: Sequence[str] | None = None) -> Any:
        """Ask the pipelines; their results by pipeline id."""
        ...

    def forget_retriever(self, domain: str) -> None:
        """Drop what was cached about the domain's documents."""
        ...


def answer_has(answer: str, expected: str) -> bool | None:
    """Whether an answer states `expected` (normalised whole words, as evaluation scores); None without one."""
    if not expected.strip() or not answer:
        return None if not expected.strip() else False
    return contains(without_citations(answer), [expected])


def run_race(
    settings: Settings,
    asker: Asker,
    domain: str,
    change: FactChange,
    pipelines: Sequence[str],
    *,
    before: dict[str, PipelineResult] | None = None,
    on_step: Callable[[str], None] | None = None,
    client: ClientAPI | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Ask, change the fact, re-index its document, ask again in every column; the race is recorded and returned.

    `before` is a comparison of the same question already made on the unchanged documents (asked here if None).
    """
    say = on_step or (lambda _msg: None)
    if before is None:
        say("asking every column on the unchanged documents")
        before = asker.run(change.question, domain, list(pipelines))
    say(f"changing {change.doc_id} and re-indexing it alone")
    active = apply_change(settings, domain, change, client=client, embedder=embedder)
    asker.forget_retriever(domain)
    say(f"re-indexed in {active.reindex_s:.1f} s; asking every column again")
    after = asker.run(change.question, domain, list(pipelines))
    race = race_record(settings, domain, change, active, before, after)
    append_race(settings, race)
    return race


def race_record(
    settings: Settings,
    domain: str,
    change: FactChange,
    active: ActiveChange,
    before: dict[str, PipelineResult],
    after: dict[str, PipelineResult],
) -> dict[str, Any]:
    """One line of races.jsonl (format RACE_FORMAT; see the module docstring)."""

    def side(r: PipelineResult | None) -> dict[str, Any]:
        if r is None:
            return {"answer": "", "error": "not asked"}
        return {
            "answer": r.answer,
            "states_old": answer_has(r.answer, change.old_answer),
            "states_new": answer_has(r.answer, change.new_answer),
            "ttft_s": r.ttft_s,
            "total_s": r.total_s,
            "error": r.error or r.notice if not r.answer else r.error,
        }

    columns = {
        pid: {"label": (after.get(pid) or before.get(pid)).label, "before": side(before.get(pid)),
              "after": side(after.get(pid))}
        for pid in dict.fromkeys([*before, *after])
    }  # fmt: skip
    rag = columns.get("rag", {}).get("after", {})
    estimate = retrain_estimate(settings, domain)
    return {
        "format": RACE_FORMAT,
        "id": uuid.uuid4().hex[:12],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "domain": domain,
        "question": change.question,
        "doc_id": change.doc_id,
        "old_text": change.old_text,
        "new_text": change.new_text,
        "old_answer": change.old_answer,
        "new_answer": change.new_answer,
        "reindex_s": active.reindex_s,
        "chunks": {"before": active.chunks_before, "after": active.chunks_after},
        "rag_new_fact_s": (
            round((active.reindex_s or 0) + rag["total_s"], 3) if rag.get("states_new") and rag.get("total_s") else None
        ),
        "columns": columns,
        "retrain": asdict(estimate) if estimate else None,
    }


def append_race(settings: Settings, race: dict[str, Any]) -> Path:
    """Add one race to races.jsonl (one line, appended; a torn last line is skipped when read)."""
    path = races_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(race, ensure_ascii=False) + "\n")
    return path


def read_races(settings: Settings, domain: str | None = None) -> list[dict[str, Any]]:
    """Every recorded race (of one domain), oldest first."""
    path = races_path(settings)
    if not path.is_file():
        return []
    races = [r for _, r in read_jsonl(path) if isinstance(r, dict)]
    return [r for r in races if domain is None or r.get("domain") == domain]
