"""Every comparison, kept under TRIPTYCH_DATA_DIR/history/ as one JSON file, and exported on demand.

A record holds the question, domain, each pipeline's full result (answer, sources, messages,
timings, tokens, cost, error) and a snapshot of the settings (triptych.runstore: endpoint URLs and
the *names* of key variables, never keys; a field that looks like a secret is masked). Exports:
JSON, CSV (one row per pipeline) and a self-contained HTML report in which every piece of text is
escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphs.result import PipelineResult
from triptych import runstore
from triptych.settings import Settings

HISTORY_DIR = "history"


def history_dir(settings: Settings) -> Path:
    """Where the comparison records are kept."""
    return settings.data_dir / HISTORY_DIR


@dataclass
class HistoryRecord:
    """One saved comparison."""

    id: str
    created_at: str  # ISO 8601, UTC
    question: str
    domain: str | None
    pipelines: list[str]
    results: dict[str, PipelineResult]
    settings: dict[str, Any]
    # The setup each column answered under: {"columns": {key: {pipeline, name, hash, column_hash}},
    # "used": {hash: the setup's full content}} (triptych/columns.py); empty in records made before setups.
    setups: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unsaved(cls, question: str, domain: str | None, results: Mapping[str, PipelineResult]) -> HistoryRecord:
        """A comparison that could not be written to the history: no id, no time, no settings."""
        return cls(id="", created_at="", question=question, domain=domain, pipelines=list(results),
                   results=dict(results), settings={})  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON, with the credentials of any URL in it masked (an error may quote a base URL)."""
        return runstore.mask_credentials_in({
            "id": self.id,
            "created_at": self.created_at,
            "question": self.question,
            "domain": self.domain,
            "pipelines": self.pipelines,
            "results": {p: r.to_dict() for p, r in self.results.items()},
            "settings": self.settings,
            "setups": self.setups,
        })  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryRecord:
        """Rebuild a record read from JSON (URL credentials masked, also in records written before masking)."""
        data = runstore.mask_credentials_in(data)
        results = {}
        for pid, raw in data.get("results", {}).items():
            results[pid] = PipelineResult.from_dict(raw)
        return cls(
            id=str(data["id"]),
            created_at=str(data.get("created_at", "")),
            question=str(data.get("question", "")),
            domain=data.get("domain"),
            pipelines=list(data.get("pipelines") or results),
            results=results,
            settings=dict(data.get("settings") or {}),
            setups=dict(data.get("setups") or {}),
        )


def save_comparison(
    settings: Settings,
    question: str,
    domain: str | None,
    results: Mapping[str, PipelineResult],
    setups: Mapping[str, Any] | None = None,
) -> HistoryRecord:
    """Write one comparison to data_dir/history/<id>.json (atomically) and return its record."""
    now = datetime.now(UTC)
    record = HistoryRecord(
        id=runstore.new_run_id(uuid.uuid4().hex[:8], now=now),
        created_at=now.isoformat(timespec="seconds"),
        question=question,
        domain=domain,
        pipelines=list(results),
        results=dict(results),
        settings=runstore.settings_snapshot(settings),
        setups=dict(setups or {}),
    )
    runstore.write_json(history_dir(settings) / f"{record.id}.json", record.to_dict())
    return record


def _newest_first(path: Path) -> tuple[datetime, str]:
    parsed = runstore.parse_run_id(path.stem)
    return (parsed.created if parsed else datetime.min.replace(tzinfo=UTC), path.stem)


def list_history(settings: Settings, limit: int | None = None) -> list[HistoryRecord]:
    """Saved comparisons, newest first (unreadable files are skipped)."""
    folder = history_dir(settings)
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json"), key=_newest_first, reverse=True)[:limit]:
        try:
            records.append(HistoryRecord.from_dict(runstore.read_json(path)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records


def load_comparison(settings: Settings, record_id: str) -> HistoryRecord:
    """One saved comparison by id, in the current or an earlier id format (FileNotFoundError if there is none)."""
    if runstore.parse_run_id(record_id) is None:
        raise FileNotFoundError(f"no comparison {record_id!r}")
    return HistoryRecord.from_dict(runstore.read_json(history_dir(settings) / f"{record_id}.json"))


# --- exports ----------------------------------------------------------------------------------------


def to_json(records: Sequence[HistoryRecord]) -> str:
    """The records as one JSON array."""
    return json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False)


CSV_COLUMNS = ("id", "created_at", "domain", "question", "pipeline", "model", "answer", "error", "notice",
               "ttft_s", "total_s", "prompt_tokens", "completion_tokens", "cost_usd", "sources")  # fmt: skip


# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(...)` in an answer).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a leading quote."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def to_csv(records: Sequence[HistoryRecord]) -> str:
    """One row per pipeline answer; sources as '[n] source p.X' joined by '; '; formulas neutralised."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for rec in records:
        for pid, r in rec.results.items():
            row = {
                "id": rec.id,
                "created_at": rec.created_at,
                "domain": rec.domain or "",
                "question": rec.question,
                "pipeline": pid,
                "model": r.model,
                "answer": r.answer,
                "error": r.error or "",
                "notice": r.notice or "",
                "ttft_s": "" if r.ttft_s is None else f"{r.ttft_s:.3f}",
                "total_s": "" if r.total_s is None else f"{r.total_s:.3f}",
                "prompt_tokens": r.prompt_tokens if r.prompt_tokens is not None else "",
                "completion_tokens": r.completion_tokens if r.completion_tokens is not None else "",
                "cost_usd": f"{r.cost_usd:.6f}",
                "sources": "; ".join(f"[{s.n}] {s.source}" + (f" p.{s.page}" if s.page else "") for s in r.sources),
            }
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return out.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
.cmp{border-top:1px solid #ccc;padding-top:1rem;margin-top:2rem}
.cols{display:flex;gap:1rem}.col{flex:1;border:1px solid #ddd;border-radius:8px;padding:.8rem;min-width:0}
.meta{color:#666;font-size:.85rem}.err{color:#b00020}.notice{color:#666;font-style:italic}
.answer{white-space:pre-wrap}.src{font-size:.85rem;white-space:pre-wrap;background:#f6f6f6;padding:.4rem}
"""


def to_html(records: Sequence[HistoryRecord], title: str = "Triptych comparisons") -> str:
    """A self-contained HTML report (inline CSS, no scripts); all text is HTML-escaped."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]  # fmt: skip
    for rec in records:
        parts.append(f"<div class='cmp'><h2>{e(rec.question)}</h2>")
        parts.append(f"<p class='meta'>{e(rec.created_at)} · domain {e(rec.domain or '–')} · id {e(rec.id)}</p>")
        parts.append("<div class='cols'>")
        for r in rec.results.values():
            parts.append(f"<div class='col'><h3>{e(r.label)}</h3><p class='meta'>{e(r.model)}</p>")
            if r.error:
                parts.append(f"<p class='err'>Error: {e(r.error)}</p>")
            if r.notice:
                parts.append(f"<p class='notice'>{e(r.notice)}</p>")
            if r.answer:
                parts.append(f"<div class='answer'>{e(r.answer)}</div>")
            ttft = "–" if r.ttft_s is None else f"{r.ttft_s:.2f} s"
            parts.append(
                f"<p class='meta'>first token {e(ttft)} · total {r.total_s or 0:.2f} s · tokens "
                f"{r.prompt_tokens or 0} in / {r.completion_tokens or 0} out · ${r.cost_usd:.4f}</p>"
            )
            for s in r.sources:
                page = f", page {s.page}" if s.page else ""
                parts.append(
                    f"<p class='meta'>[{s.n}] {e(s.title or s.source)}{e(page)} · score {s.score:.2f}</p>"
                    f"<div class='src'>{e(s.text)}</div>"
                )
            parts.append("</div>")
        parts.append("</div></div>")
    parts.append("</body></html>")
    return "".join(parts)
