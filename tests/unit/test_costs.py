"""Cost arithmetic: cumulative cost lines, where they cross, and how the figures read."""

from __future__ import annotations

import pytest

from triptych.costs import (
    CostLine,
    about,
    about_daily,
    break_even,
    break_evens,
    cpu_cost,
    machine_cost,
    nice_ceil,
    per_day,
    questions_axis,
    token_cost,
    usd,
)


def test_token_and_machine_costs_are_price_times_amount() -> None:
    assert token_cost(1000, 500, 0.15, 0.6) == pytest.approx(0.15 + 0.3)
    assert token_cost(650, 20, 0.0, 0.0) == 0.0
    assert machine_cost(3600, 0.09) == pytest.approx(0.09)
    assert machine_cost(1.8, 0.0) == 0.0
    # a CPU second on a 2-vCPU machine at $3.60 an hour is half a machine second: $0.0005
    assert cpu_cost(1.0, 3.6, 2) == pytest.approx(0.0005) and cpu_cost(0.84, 3.6, 2) == pytest.approx(0.00042)
    assert cpu_cost(7200, 0.0893, 2) == pytest.approx(0.0893)  # both vCPUs busy for an hour: the hour's price


def test_rag_with_longer_prompts_costs_more_than_fine_tuning_after_the_crossing() -> None:
    # RAG: $1 to index, 3 cents a question; fine-tuned: $10 to train, 1 cent a question.
    rag = CostLine("rag", "RAG", one_off_usd=1.0, per_question_usd=0.03)
    ft = CostLine("finetuned", "Fine-tuned", one_off_usd=10.0, per_question_usd=0.01)
    be = break_even(rag, ft)
    assert be is not None
    assert be.questions == pytest.approx(450.0)  # (10 - 1) / (0.03 - 0.01)
    assert be.cheaper_first is rag and be.cheaper_after is ft
    assert be.usd == pytest.approx(rag.at(450)) == pytest.approx(ft.at(450)) == pytest.approx(14.5)
    assert rag.at(449) < ft.at(449) and rag.at(451) > ft.at(451)
    assert break_even(ft, rag) == be  # the order of the two lines does not matter


def test_no_break_even_when_the_lines_never_cross() -> None:
    cheap = CostLine("prompt", "Prompt", 0.0, 0.001)
    dear = CostLine("rag", "RAG", 2.0, 0.003)  # dearer to set up and per question
    assert break_even(cheap, dear) is None
    parallel = CostLine("finetuned", "Fine-tuned", 5.0, 0.001)  # same cost per question, never meets
    assert break_even(cheap, parallel) is None
    same = CostLine("x", "X", 0.0, 0.001)
    assert break_even(cheap, same) is None  # identical lines: no single point to mark
    # they meet only at zero questions (same one-off), then part: not a break-even
    assert break_even(CostLine("a", "A", 1.0, 0.01), CostLine("b", "B", 1.0, 0.02)) is None


def test_zero_prices_give_no_break_even() -> None:
    lines = [CostLine(p, p, 0.0, 0.0) for p in ("prompt", "rag", "finetuned")]
    assert break_evens(lines) == []
    assert questions_axis([]) == 1000


def test_every_crossing_fewest_questions_first_and_the_axis_runs_past_the_last() -> None:
    prompt = CostLine("prompt", "Prompt", 0.0, 0.05)
    rag = CostLine("rag", "RAG", 1.0, 0.03)
    ft = CostLine("finetuned", "Fine-tuned", 10.0, 0.01)
    found = break_evens([prompt, rag, ft])
    assert [(b.cheaper_first.pipeline, b.cheaper_after.pipeline) for b in found] == [
        ("prompt", "rag"),  # 1 / 0.02 = 50
        ("prompt", "finetuned"),  # 10 / 0.04 = 250
        ("rag", "finetuned"),  # 450
    ]
    assert [round(b.questions) for b in found] == [50, 250, 450]
    assert questions_axis(found) == 1000  # 450 x 1.5 = 675, rounded up to a round number


def test_round_numbers_for_axes_and_sentences() -> None:
    assert nice_ceil(675) == 1000 and nice_ceil(180) == 200 and nice_ceil(0.3) == 0.5 and nice_ceil(0) == 1
    assert nice_ceil(250) == 250
    assert about(450.0) == "450" and about(1349.7) == "1,300" and about(3.4) == "3" and about(0.2) == "1"
    assert usd(0) == "$0" and usd(1234.5) == "$1,234.50" and usd(0.00042) == "$0.00042"


def test_a_break_even_a_day_is_its_questions_over_the_days_the_one_offs_are_spread_over() -> None:
    assert per_day(440, 30) == pytest.approx(14.667, abs=1e-3) and per_day(450, 1) == 450
    assert about_daily(per_day(440, 30)) == "about 15 a day" and about_daily(per_day(39_000, 30)) == "about 1,300 a day"
    assert about_daily(0.7) == "about 1 a day"  # once every 1.4 days still reads as one a day
    assert about_daily(per_day(10, 30)) == "about 1 every 3 days" and about_daily(0.6) == "about 1 every 2 days"
