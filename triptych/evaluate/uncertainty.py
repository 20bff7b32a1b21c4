"""How sure a score is: Wilson intervals, paired bootstrap intervals on differences, McNemar's exact test.

On a few dozen questions two pipelines often differ by chance; these say when they do not.

- `wilson_interval`: 95 % Wilson score interval of a proportion k/n.
- `paired_bootstrap`: 95 % percentile interval of the accuracy difference of two pipelines on the
  same questions, resampling questions (fixed seed, so a run always reports the same interval).
- `mcnemar_exact_p`: two-sided exact McNemar p-value from the discordant pairs (binomial, p = 1/2).
- `compare_pipelines`: all of it for each pair of pipelines of a run (summary.json `comparisons`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import combinations
from typing import Any

Z95 = 1.959963984540054
RESAMPLES = 2000
SEED = 0


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials (None for n = 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p: b, c are the pairs only the first / only the second got right."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def paired_bootstrap(
    first: Sequence[bool], second: Sequence[bool], resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """95 % percentile interval of mean(first) - mean(second), resampling the paired questions."""
    if len(first) != len(second):
        raise ValueError("paired answers: both pipelines need the same questions")
    n = len(first)
    if n == 0:
        return None
    diffs = [int(a) - int(b) for a, b in zip(first, second, strict=True)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    return _quantile(means, 0.025), _quantile(means, 0.975)


def verdict(first: str, second: str, difference: float, interval: tuple[float, float] | None, n: int) -> str:
    """One line: which pipeline is ahead, or "no clear difference at n = ..." when the interval holds 0."""
    if interval is None or n == 0:
        return "no shared answers to compare"
    lo, hi = interval
    if lo <= 0 <= hi:
        return f"no clear difference at n = {n}"
    ahead, behind = (first, second) if difference > 0 else (second, first)
    return (
        f"{ahead} ahead of {behind} by {100 * abs(difference):.1f} points "
        f"(95 % CI {100 * lo:+.1f} to {100 * hi:+.1f}) at n = {n}"
    )


def compare_pipelines(answers: Sequence[dict[str, Any]], pipelines: Sequence[str]) -> list[dict[str, Any]]:
    """Each pair of pipelines on the questions both answered (scored), leaving out any seen in training.

    A question an adapter pipeline was trained on (`seen_in_training` true) is left out of the pairs
    that pipeline is in, so fine-tuning is compared on questions it did not see.
    """
    by_pipeline: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in pipelines}
    for a in answers:
        if a["pipeline"] in by_pipeline and a["status"] != "unavailable" and a["scores"].get("correct") is not None:
            by_pipeline[a["pipeline"]][a["question_id"]] = a
    out = []
    for first, second in combinations(pipelines, 2):
        rows_a, rows_b = by_pipeline[first], by_pipeline[second]
        shared = [q for q in rows_a if q in rows_b]
        kept = [q for q in shared if not rows_a[q].get("seen_in_training") and not rows_b[q].get("seen_in_training")]
        split = any(r.get("seen_in_training") is not None for r in [*rows_a.values(), *rows_b.values()])
        right_a = [bool(rows_a[q]["scores"]["correct"]) for q in kept]
        right_b = [bool(rows_b[q]["scores"]["correct"]) for q in kept]
        n = len(kept)
        acc_a = sum(right_a) / n if n else None
        acc_b = sum(right_b) / n if n else None
        difference = acc_a - acc_b if acc_a is not None and acc_b is not None else None
        interval = paired_bootstrap(right_a, right_b)
        only_a = sum(x and not y for x, y in zip(right_a, right_b, strict=True))
        only_b = sum(y and not x for x, y in zip(right_a, right_b, strict=True))
        out.append(
            {
                "a": first,
                "b": second,
                "questions": "unseen" if split else "all",
                "n": n,
                "left_out_seen": len(shared) - n,
                "accuracy_a": _r(acc_a),
                "accuracy_b": _r(acc_b),
                "difference": _r(difference),
                "ci95": [_r(interval[0]), _r(interval[1])] if interval else None,
                "only_a_right": only_a,
                "only_b_right": only_b,
                "mcnemar_p": float(f"{mcnemar_exact_p(only_a, only_b):.6g}"),
                "bootstrap": {"resamples": RESAMPLES, "seed": SEED},
                "verdict": verdict(first, second, difference or 0.0, interval, n),
            }
        )
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
