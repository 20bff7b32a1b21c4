"""Blind votes on saved comparisons: the ballot, its shuffle, the vote store and the per-domain leaderboard.

A viewer sees a comparison's answers as A, B, C in an order drawn from the comparison id and the
viewer's id (the same viewer always sees the same order; another viewer or comparison, another one),
votes for the best answer or "none is right", and only then learns which method wrote which.

Votes are appended as JSON lines to TRIPTYCH_DATA_DIR/votes/votes.jsonl under a file lock in
TRIPTYCH_DATA_DIR/locks, so the app's sessions, several app processes and the CLI can write at once;
one vote per viewer per comparison is checked under the same lock. A torn last line (a crash mid-write)
is skipped and never glued to the next vote.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from triptych.evaluate.uncertainty import wilson_interval
from triptych.history import HistoryRecord
from triptych.jsonl import read_jsonl
from triptych.settings import Settings

VOTES_DIR = "votes"
VOTES_FILE = "votes.jsonl"
LOCK_TIMEOUT_S = 30
NONE = "none"  # the choice "none of the answers is right"
NONE_LABEL = "None is right"
LETTERS = "ABCDEFGHIJ"


def votes_path(settings: Settings) -> Path:
    """The append-only vote log."""
    return settings.data_dir / VOTES_DIR / VOTES_FILE


def _lock(settings: Settings) -> FileLock:
    path = settings.data_dir / "locks" / "votes.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=LOCK_TIMEOUT_S, is_singleton=True)


@dataclass(frozen=True)
class Vote:
    """One viewer's vote on one comparison."""

    comparison_id: str
    domain: str | None
    question: str
    viewer: str
    choice: str  # a column of `candidates`, or NONE
    # the comparison's columns on the ballot (every one had an answer): pipeline ids, or `rag@setup` keys
    candidates: list[str]
    order: list[str]  # the ballot as this viewer saw it: A first
    created_at: str  # ISO 8601, UTC
    labels: dict[str, str] = field(default_factory=dict)  # each candidate's label as the reveal showed it

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vote:
        """Rebuild a vote read from the log (KeyError/TypeError on a line that is not one)."""
        return cls(
            comparison_id=str(data["comparison_id"]),
            domain=data.get("domain"),
            question=str(data.get("question", "")),
            viewer=str(data["viewer"]),
            choice=str(data["choice"]),
            candidates=[str(p) for p in data["candidates"]],
            order=[str(p) for p in data.get("order") or data["candidates"]],
            created_at=str(data.get("created_at", "")),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        )


@dataclass(frozen=True)
class CastResult:
    """What happened to a vote: stored, or refused because this viewer had voted on the comparison before."""

    vote: Vote  # the vote now on record for this viewer and comparison
    stored: bool  # False: `vote` is the earlier one, the new one was not counted


# --- the ballot -------------------------------------------------------------------------------------


def ballot(record: HistoryRecord) -> list[str]:
    """The pipelines a blind vote can choose from: those that answered without an error.

    A column with an error or a notice ("not fine-tuned yet") would give its method away, so it is left off.
    """
    return [p for p, r in record.results.items() if r.answer.strip() and not r.error]


def shuffled(pipelines: Sequence[str], comparison_id: str, viewer: str) -> list[str]:
    """`pipelines` in an order drawn from the comparison and the viewer (stable for both, varies with either)."""
    seed = int.from_bytes(hashlib.sha256(f"{comparison_id}\x00{viewer}".encode()).digest()[:8], "big")
    order = list(pipelines)
    random.Random(seed).shuffle(order)
    return order


def letters(order: Sequence[str]) -> dict[str, str]:
    """Pipeline id -> its letter on the ballot (A for the first column)."""
    if len(order) > len(LETTERS):
        raise ValueError(f"a ballot holds at most {len(LETTERS)} answers, not {len(order)}")
    return {p: LETTERS[i] for i, p in enumerate(order)}


def new_viewer_id() -> str:
    """A random id for one viewer's session (who voted is never stored, only this)."""
    return os.urandom(8).hex()


# --- the store --------------------------------------------------------------------------------------


def read_votes(settings: Settings) -> list[Vote]:
    """Every vote on record, oldest first (a line that is not a vote is skipped)."""
    path = votes_path(settings)
    if not path.is_file():
        return []
    votes = []
    for _, data in read_jsonl(path):
        try:
            votes.append(Vote.from_dict(data))
        except (KeyError, TypeError, AttributeError):
            continue
    return votes


def vote_of(settings: Settings, comparison_id: str, viewer: str) -> Vote | None:
    """This viewer's vote on this comparison, if there is one."""
    return next((v for v in read_votes(settings) if v.comparison_id == comparison_id and v.viewer == viewer), None)


def cast_vote(settings: Settings, record: HistoryRecord, viewer: str, choice: str) -> CastResult:
    """Record `viewer`'s vote for `choice` (a pipeline on the comparison's ballot, or NONE).

    One vote per viewer per comparison: a second one is not stored and the first is returned. A
    choice that is not on the ballot is a ValueError naming the ones that are.
    """
    if not record.id:
        raise ValueError("this comparison was not saved to the history, so it cannot be voted on")
    if not viewer:
        raise ValueError("a vote needs a viewer id")
    candidates = ballot(record)
    if len(candidates) < 2:
        raise ValueError(f"comparison {record.id} has {len(candidates)} answer(s): a blind vote needs at least two")
    if choice != NONE and choice not in candidates:
        raise ValueError(f"{choice!r} is not on the ballot; expected one of {', '.join([*candidates, NONE])}")
    path = votes_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(settings):
        if (earlier := vote_of(settings, record.id, viewer)) is not None:
            return CastResult(earlier, stored=False)
        vote = Vote(
            comparison_id=record.id,
            domain=record.domain,
            question=record.question,
            viewer=viewer,
            choice=choice,
            candidates=candidates,
            order=shuffled(candidates, record.id, viewer),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            labels={p: record.results[p].label for p in candidates},
        )
        _append(path, asdict(vote))
    return CastResult(vote, stored=True)


def _append(path: Path, obj: dict[str, Any]) -> None:
    """One JSON line at the end of `path`, on a line of its own even after a torn last line; fsynced."""
    line = json.dumps(obj, ensure_ascii=False) + "\n"
    with path.open("ab+") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = "\n" + line
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


# --- counting ---------------------------------------------------------------------------------------


def tally(settings: Settings, comparison_id: str) -> dict[str, int]:
    """Votes on one comparison: choice -> count (pipelines and NONE)."""
    counts: dict[str, int] = {}
    for v in read_votes(settings):
        if v.comparison_id == comparison_id:
            counts[v.choice] = counts.get(v.choice, 0) + 1
    return counts


@dataclass(frozen=True)
class LeaderboardRow:
    """One pipeline's blind-vote record in a domain (or the 'none is right' share of the votes).

    `win_rate` is wins / votes, where `votes` counts the votes whose ballot held this pipeline
    (for NONE: every vote); `ci95` is its Wilson 95 % interval.
    """

    pipeline: str  # a pipeline id (or a `pipeline@setup` column key), or NONE
    label: str
    wins: int
    votes: int
    win_rate: float
    ci95: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (the HTML report, the CLI)."""
        return asdict(self)


def leaderboard_of(votes: Iterable[Vote], labels: dict[str, str] | None = None) -> list[LeaderboardRow]:
    """The leaderboard of these votes: pipelines by win rate (then wins), the NONE row last.

    A row's label is the one its latest vote recorded, else `labels`' (pipeline id -> label), else its id.
    """
    labels = dict(labels or {})
    wins: dict[str, int] = {}
    seen: dict[str, int] = {}
    total = none = 0
    for v in votes:
        total += 1
        none += v.choice == NONE
        labels.update(v.labels)
        for p in v.candidates:
            seen[p] = seen.get(p, 0) + 1
        if v.choice != NONE:
            wins[v.choice] = wins.get(v.choice, 0) + 1

    def row(pipeline: str, label: str, k: int, n: int) -> LeaderboardRow:
        return LeaderboardRow(pipeline, label, k, n, k / n, wilson_interval(k, n) or (0.0, 1.0))

    rows = [row(p, labels.get(p, p), wins.get(p, 0), n) for p, n in seen.items()]
    rows.sort(key=lambda r: (-r.win_rate, -r.wins, r.pipeline))
    if total:
        rows.append(row(NONE, NONE_LABEL, none, total))
    return rows


def leaderboard(settings: Settings, domain: str | None, question: str | None = None) -> list[LeaderboardRow]:
    """The blind-vote leaderboard of one domain (optionally of one question), labelled as the pipelines are."""
    from graphs.registry import PIPELINES

    votes = [v for v in read_votes(settings) if v.domain == domain and (question is None or v.question == question)]
    return leaderboard_of(votes, {p: spec.label for p, spec in PIPELINES.items()})


def voted_domains(settings: Settings) -> list[str | None]:
    """Domains with at least one vote, in the order of their first vote."""
    return list(dict.fromkeys(v.domain for v in read_votes(settings)))


def vote_count(settings: Settings, domain: str | None) -> int:
    """How many votes a domain has."""
    return sum(v.domain == domain for v in read_votes(settings))
