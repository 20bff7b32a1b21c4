"""Accuracy figures for fine-tuning runs: the eval's metrics (whole-word contains, token F1), in percent."""

from __future__ import annotations

import pytest

from triptych.finetune.evaluate import score


def test_score_takes_the_best_gold_answer_per_question() -> None:
    result = score(["You get 2.25 days per month.", "I don't know."], [["two and a quarter days", "2.25 days"], ["x"]])
    assert result["n"] == 2
    assert result["contains"] == 50.0


def test_score_matches_whole_words_like_the_eval() -> None:
    # A substring scorer counted "5" inside "15 days"; the fine-tune figures now agree with `triptych eval`.
    assert score(["15 days"], [["5"]])["contains"] == 0.0
    assert score(["5 days"], [["5"]])["contains"] == 100.0


def test_score_f1_is_token_overlap() -> None:
    f1 = 2 * 1 * (2 / 5) / (1 + 2 / 5)  # "31 march" against the five tokens of the gold answer
    assert score(["31 March"], [["31 March of the following year"]])["f1"] == pytest.approx(100 * f1, abs=0.05)


def test_score_is_in_percent() -> None:
    assert score(["Teal", "Red"], [["teal"], ["blue"]]) == {"n": 2, "contains": 50.0, "f1": 50.0}
    assert score([], []) == {"n": 0, "contains": 0.0, "f1": 0.0}
