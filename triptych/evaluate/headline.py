"""Which figures a summary shows first, as every view (CLI, Scores page, HTML report, compare, bench) shows them.

A pipeline served by a fine-tuned adapter is headlined by its metrics on questions it was NOT
trained on (`by_training.unseen`), with the seen figure beside it; other pipelines by all their
answers. Runs stored before these were kept lack the keys: views say NOT_RECORDED, never guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from triptych.evaluate.scoring import MISS_CAUSES, uses_adapter

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Headline:
    """One pipeline's metrics to show first, what they are over, and the seen-in-training ones beside."""

    metrics: dict[str, Any]
    basis: str  # "unseen" (adapter pipelines with the split recorded) or "all"
    seen: dict[str, Any] | None  # None: no adapter, or the split was not recorded
    split_missing: bool  # an adapter pipeline whose run did not record seen / unseen

    @property
    def n(self) -> int | None:
        """Answers the headline figures are over."""
        return scored(self.metrics)

    @property
    def seen_n(self) -> int | None:
        """Answers the seen figures are over."""
        return scored(self.seen) if self.seen is not None else None


def scored(m: dict[str, Any] | None) -> int | None:
    """How many answers a metrics object scored (older runs: questions less unavailable)."""
    if not m:
        return None
    if "scored" in m:
        return int(m["scored"])
    if "questions" in m:
        return int(m["questions"]) - int(m.get("unavailable") or 0)
    return None


def headline(pipeline: str, m: dict[str, Any]) -> Headline:
    """The headline of one pipeline's `metrics` object from summary.json."""
    split = m.get("by_training")
    if isinstance(split, dict) and isinstance(split.get("unseen"), dict):
        if scored(split["unseen"]) or scored(split.get("seen")):
            return Headline(split["unseen"], "unseen", split.get("seen"), False)
        # nothing known about training (e.g. an endpoint that serves its own fine-tuned model): all answers
        return Headline(m, "all", None, bool(split.get("not_recorded")))
    return Headline(m, "all", None, uses_adapter(pipeline))


def value(m: dict[str, Any] | None, key: str) -> Any:
    """A metric by dotted key (`ttft_s.median`), None where absent."""
    out: Any = m
    for part in key.split("."):
        if not isinstance(out, dict):
            return None
        out = out.get(part)
    return out


def seen_beside(h: Headline, key: str, show: Callable[[Any], str]) -> str:
    """The seen-in-training figure to print beside the headline ('' for pipelines without an adapter)."""
    if h.split_missing:
        return f"seen: {NOT_RECORDED}"
    if h.seen is None:
        return ""
    return f"seen {show(value(h.seen, key))} (n={h.seen_n})"


def counts_text(h: Headline) -> str:
    """What the figures are over: 'n=40' or 'unseen n=30 · seen n=10'."""
    if h.basis == "unseen":
        return f"unseen n={h.n} · seen n={h.seen_n}"
    if h.split_missing:
        return f"n={h.n} (seen / unseen {NOT_RECORDED})"
    return f"n={h.n}"


def interval_text(m: dict[str, Any]) -> str:
    """The Wilson 95 % interval on `correct`, e.g. '38.0–61.2 %', or NOT_RECORDED."""
    ci = m.get("correct_ci95")
    if not ci:
        return NOT_RECORDED if "correct_ci95" not in m else "–"
    return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"


def causes(m: dict[str, Any]) -> dict[str, int] | None:
    """The miss causes of a pipeline in MISS_CAUSES order (None when the run did not record them)."""
    found = m.get("miss_causes")
    if not isinstance(found, dict):
        return None
    order = [c for c in MISS_CAUSES if c in found] + [c for c in found if c not in MISS_CAUSES]
    return {c: int(found[c]) for c in order}


def causes_text(m: dict[str, Any]) -> str:
    """'retrieval miss 3, read miss 1' or 'none' or NOT_RECORDED."""
    found = causes(m)
    if found is None:
        return NOT_RECORDED
    return ", ".join(f"{c} {n}" for c, n in found.items() if n) or "none"


def comparison_text(c: dict[str, Any]) -> str:
    """One pair of pipelines: the difference with its interval and McNemar's p, and the verdict."""
    if not c.get("n"):
        return f"{c['a']} vs {c['b']}: {c.get('verdict', 'no shared answers')}"
    lo, hi = c["ci95"]
    basis = " (questions unseen in training)" if c.get("questions") == "unseen" else ""
    return (
        f"{c['a']} vs {c['b']}{basis}: {100 * c['accuracy_a']:.1f} % vs {100 * c['accuracy_b']:.1f} %, "
        f"difference {100 * c['difference']:+.1f} points (95 % CI {100 * lo:+.1f} to {100 * hi:+.1f}), "
        f"McNemar p = {c['mcnemar_p']:.3g}: {c['verdict']}"
    )


def latest_per_domain(runs: Sequence[Any], selected: Any) -> list[Any]:
    """The selected run, then for each other domain its newest run that recorded miss causes (RunSummary objects).

    `runs` newest first, as store.list_runs gives them.
    """
    chosen = {selected.domain: selected}
    for r in runs:
        if r.domain not in chosen and any(causes(m) is not None for m in r.metrics.values()):
            chosen[r.domain] = r
    return [chosen[d] for d in sorted(chosen)]


def cause_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per (domain, pipeline, cause) with its count, for a stacked bar chart; runs without causes skipped."""
    rows = []
    for r in runs:
        for p in r.pipelines:
            for cause, n in (causes(r.metrics.get(p, {})) or {}).items():
                rows.append(
                    {"domain": r.domain, "pipeline": p, "bar": f"{r.domain} · {p}", "cause": cause, "answers": n}
                )
    return rows
