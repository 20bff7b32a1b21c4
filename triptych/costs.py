"""The arithmetic of cost and break-even: straight lines of cumulative cost against questions asked.

Each pipeline costs a one-off amount before its first answer (building the index, training the
adapter) plus a fixed amount per question. Two such lines cross at most once; where they cross at a
positive number of questions, the pipeline that was cheaper to set up becomes the dearer one. The
figures themselves are measured elsewhere (`triptych.cost_sources`); nothing here guesses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

SECONDS_PER_HOUR = 3600.0


def token_cost(
    prompt_tokens: float, completion_tokens: float, price_in_per_1k: float, price_out_per_1k: float
) -> float:
    """USD for tokens at per-1K prices (a remote endpoint's bill)."""
    return (prompt_tokens * price_in_per_1k + completion_tokens * price_out_per_1k) / 1000


def machine_cost(seconds: float, usd_per_hour: float) -> float:
    """USD for holding a machine busy `seconds` at an hourly price (a local model, an index build, a LoRA run)."""
    return seconds * usd_per_hour / SECONDS_PER_HOUR


def cpu_cost(cpu_seconds: float, usd_per_hour: float, vcpus: int) -> float:
    """USD for CPU seconds on a machine of `vcpus` vCPUs priced per hour: one CPU second is 1/vcpus of its second."""
    return machine_cost(cpu_seconds, usd_per_hour) / vcpus


@dataclass(frozen=True)
class CostLine:
    """One pipeline's cumulative cost: `one_off_usd + per_question_usd * questions`."""

    pipeline: str
    label: str
    one_off_usd: float
    per_question_usd: float

    def at(self, questions: float) -> float:
        """Total USD after `questions` questions."""
        return self.one_off_usd + self.per_question_usd * questions


@dataclass(frozen=True)
class BreakEven:
    """Where two cost lines cross: before `questions`, `cheaper_first` costs less in all; after it, `cheaper_after`."""

    cheaper_first: CostLine  # the one that is cheaper to set up
    cheaper_after: CostLine  # the one that is cheaper per question
    questions: float

    @property
    def usd(self) -> float:
        """The total cost of either pipeline at the crossing."""
        return self.cheaper_after.at(self.questions)


def break_even(a: CostLine, b: CostLine) -> BreakEven | None:
    """The crossing of two lines at a positive number of questions, or None when they never cross there.

    None when they cost the same per question (parallel or identical lines), or when one is cheaper
    (or as cheap) both to set up and per question.
    """
    per_question_gap = a.per_question_usd - b.per_question_usd
    if math.isclose(per_question_gap, 0.0, rel_tol=1e-12, abs_tol=1e-15):
        return None
    questions = (b.one_off_usd - a.one_off_usd) / per_question_gap
    if not (questions > 0 and math.isfinite(questions)):
        return None
    cheaper_after, dearer_after = (a, b) if a.per_question_usd < b.per_question_usd else (b, a)
    return BreakEven(cheaper_first=dearer_after, cheaper_after=cheaper_after, questions=questions)


def break_evens(lines: Sequence[CostLine]) -> list[BreakEven]:
    """Every crossing between any two of `lines`, fewest questions first."""
    found = [be for a, b in combinations(lines, 2) if (be := break_even(a, b)) is not None]
    return sorted(found, key=lambda be: be.questions)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is at least `x` (an axis end); 1 for x <= 0."""
    if x <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= x * (1 - 1e-12))


def questions_axis(crossings: Sequence[BreakEven], default: float = 1000) -> float:
    """How far the chart's question axis runs: past the last crossing by half again, else `default`."""
    if not crossings:
        return nice_ceil(default)
    return nice_ceil(max(be.questions for be in crossings) * 1.5)


def about(questions: float) -> str:
    """A question count as a person says it: two significant figures, thousands separated ('1,300')."""
    if questions < 10:
        return str(max(1, round(questions)))
    places = math.floor(math.log10(questions)) - 1  # keep two significant figures
    return f"{round(questions / 10**places) * 10**places:,}"


def per_day(questions: float, horizon_days: float) -> float:
    """A break-even as a daily load: the questions a day that reach `questions` within the `horizon_days`
    over which the one-off costs are spread (an index or adapter rebuilt that often)."""
    return questions / horizon_days


def about_daily(questions_a_day: float) -> str:
    """A daily rate as a person says it: 'about 15 a day'; under one a day, 'about 1 every 3 days'."""
    if 1 / questions_a_day < 1.5:
        return f"about {about(questions_a_day)} a day"
    return f"about 1 every {about(1 / questions_a_day)} days"


def daily(questions: float, horizon_days: int) -> str:
    """A break-even's questions said a day: 'about 15 a day over 30 days'."""
    return f"{about_daily(per_day(questions, horizon_days))} over {horizon_days} days"


def usd(value: float) -> str:
    """Dollars for display: cents from 10 cents up, two significant figures below ('$0.00042')."""
    if value == 0:
        return "$0"
    if abs(value) >= 0.1:
        return f"${value:,.2f}"
    return f"${value:.2g}" if abs(value) >= 1e-4 else f"${value:.1e}"
