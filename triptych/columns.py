"""Columns of a comparison: a pipeline under a setup, run side by side, re-asked only where they changed.

A column is one pipeline answering under one setup (triptych/setups.py). The same pipeline may
appear twice under two setups ("rag" and "rag@top4"). Columns of the same setup run through one
runner (graphs/compare.py); runners of different setups share the local models' queue, so all
columns still run at once. A column's fingerprint is the hash of the part of its setup that decides
its answer: "Ask again" re-runs the columns whose fingerprint differs from their last answer's.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from graphs.compare import Comparison, Event
from graphs.registry import get_spec
from graphs.result import PipelineResult
from triptych.bridge import run_relaying
from triptych.setups import Setup


@dataclass(frozen=True)
class Column:
    """One pipeline under one setup; `key` names it in events, results and records."""

    key: str
    pipeline: str
    setup: Setup

    @property
    def fingerprint(self) -> str:
        """The hash of the part of the setup that decides this column's answer."""
        return self.setup.column_hash(self.pipeline)

    def record(self) -> dict[str, Any]:
        """How a history record names this column's setup: pipeline, setup name and hash, the column's hash."""
        return {"pipeline": self.pipeline, **self.setup.ref(), "column_hash": self.fingerprint}


def columns_for(pipelines: Sequence[str], setup: Setup, other: Setup | None = None) -> list[Column]:
    """A column per pipeline under `setup`; with `other`, each pipeline again under it, right beside."""
    columns = []
    for pid in pipelines:
        get_spec(pid)
        columns.append(Column(pid, pid, setup))
        if other is not None:
            columns.append(Column(f"{pid}@{other.name}", pid, other))
    return columns


def changed_columns(columns: Sequence[Column], last: Mapping[str, str]) -> list[Column]:
    """The columns whose setup part differs from the one their last answer came from (or with no last answer).

    `last` maps a column's key to the fingerprint its shown answer was made with.
    """
    return [c for c in columns if last.get(c.key) != c.fingerprint]


async def arun_columns(
    runner: Comparison, question: str, domain: str | None, columns: Sequence[Column],
    on_event: Callable[[Event], None] | None = None, eval_run: str | None = None,
) -> dict[str, PipelineResult]:  # fmt: skip
    """Run every column at once (each setup's columns through its runner); results by column key, in order.

    Events carry the column's key as `pipeline`. A column under a second setup is labelled with its
    setup's name ("RAG · top4").
    """
    groups: dict[tuple[str, str], list[Column]] = {}  # two names for one content still make two columns
    for column in columns:
        groups.setdefault((column.setup.hash, column.setup.name), []).append(column)
    keys = {c.key for c in columns}
    if len(keys) != len(columns):
        raise ValueError("two columns share a key")

    async def run_group(group: list[Column]) -> dict[str, PipelineResult]:
        by_pipeline = {c.pipeline: c for c in group}
        if len(by_pipeline) != len(group):
            raise ValueError("a pipeline appears twice under the same setup")

        def relay(event: Event) -> None:
            if on_event is not None:
                on_event(replace(event, pipeline=by_pipeline[event.pipeline].key))

        results = await runner.under(group[0].setup).arun(
            question, domain, list(by_pipeline), on_event=relay, eval_run=eval_run
        )
        out = {}
        for pid, result in results.items():
            column = by_pipeline[pid]
            if column.key != pid:
                result.label = f"{result.label} · {column.setup.name}"
            out[column.key] = result
        return out

    parts = await asyncio.gather(*(run_group(g) for g in groups.values()))
    merged = {k: r for part in parts for k, r in part.items()}
    return {c.key: merged[c.key] for c in columns}


def run_columns(
    runner: Comparison, question: str, domain: str | None, columns: Sequence[Column],
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, PipelineResult]:  # fmt: skip
    """`arun_columns` for synchronous callers (Streamlit, CLI); `on_event` runs in the caller's thread."""
    return run_relaying(lambda report: arun_columns(runner, question, domain, columns, on_event=report), on_event)


Change = Literal["same", "removed", "added"]


def word_diff(old: str, new: str) -> list[tuple[Change, str]]:
    """The words of `old` and `new` in order, each marked same, removed (only in old) or added (only in new)."""
    a, b = old.split(), new.split()
    out: list[tuple[Change, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(b[j1:j2])))
    return out


# --- what a history record keeps of the setups -----------------------------------------------------


def setups_record(columns: Sequence[Column]) -> dict[str, Any]:
    """For a history record: each column's setup (name, hashes) and every setup used, in full (its prompts)."""
    used = {c.setup.hash: c.setup.model_dump(mode="json") for c in columns}
    return {"columns": {c.key: c.record() for c in columns}, "used": used}


def name_setup(setups: dict[str, Any], saved: Setup) -> bool:
    """Name `saved` in a record's setups where a column used the same content under another name; whether it did."""
    named = False
    for column in setups.get("columns", {}).values():
        if column.get("hash") == saved.hash and column.get("name") != saved.name:
            column["name"] = saved.name
            named = True
    if saved.hash in setups.get("used", {}):
        setups["used"][saved.hash]["name"] = saved.name
    return named
