"""Accuracy metrics for fine-tuning runs: normalised contains and token F1."""

from __future__ import annotations

import pytest

from triptych.finetune.evaluate import contains, normalise, score, token_f1


def test_normalise_drops_case_punctuation_and_articles() -> None:
    assert normalise("The  Carry-over deadline: 31 March!") == "carryover deadline 31 march"


def test_contains_and_f1_take_the_best_gold_answer() -> None:
    assert contains("You get 2.25 days per month.", ["two and a quarter days", "2.25 days"]) == 1.0
    assert contains("I don't know.", ["2.25 days"]) == 0.0
    assert token_f1("31 March", ["31 March of the following year"]) == pytest.approx(2 * 1 * (2 / 5) / (1 + 2 / 5))
    assert token_f1("", ["x"]) == 0.0


def test_score_is_in_percent() -> None:
    assert score(["Teal", "Red"], [["teal"], ["blue"]]) == {"n": 2, "contains": 50.0, "f1": 50.0}
    assert score([], []) == {"n": 0, "contains": 0.0, "f1": 0.0}
