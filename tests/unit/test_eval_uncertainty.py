"""Uncertainty of scores: Wilson intervals, McNemar's exact test and the paired bootstrap, against known values."""

from __future__ import annotations

from typing import Any

import pytest

from triptych.evaluate.uncertainty import compare_pipelines, mcnemar_exact_p, paired_bootstrap, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
     (5, 10, 0.2366, 0.7634)],
)  # fmt: skip
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)  # type: ignore[misc]
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("b", "c", "p"),
    # two-sided exact binomial test of b successes in b + c trials at 1/2 (scipy.stats.binomtest agrees)
    [(1, 6, 0.125), (0, 5, 0.0625), (3, 12, 0.03515625), (10, 20, 0.0987371467), (7, 7, 1.0), (0, 0, 1.0),
     (40, 60, 0.0568879336)],
)  # fmt: skip
def test_mcnemar_exact_p_matches_the_binomial_test(b: int, c: int, p: float) -> None:
    assert mcnemar_exact_p(b, c) == pytest.approx(p, rel=1e-8)
    assert mcnemar_exact_p(c, b) == pytest.approx(p, rel=1e-8)


def test_paired_bootstrap_is_fixed_by_its_seed_and_brackets_the_difference() -> None:
    first = [True] * 30 + [False] * 10
    second = [True] * 10 + [False] * 30  # the first pipeline is right on 20 questions the second misses
    lo, hi = paired_bootstrap(first, second)  # type: ignore[misc]
    assert 0 < lo < 0.5 < hi < 1 and (lo, hi) == paired_bootstrap(first, second)
    same = [True, False] * 10
    assert paired_bootstrap(same, same) == (0.0, 0.0)
    with pytest.raises(ValueError, match="same questions"):
        paired_bootstrap([True], [True, False])


def answer(pipeline: str, qid: str, correct: bool, seen: bool | None = None) -> dict[str, Any]:
    return {"pipeline": pipeline, "question_id": qid, "status": "ok", "scores": {"correct": correct},
            "seen_in_training": seen}  # fmt: skip


def test_pairs_read_no_clear_difference_when_the_interval_holds_zero() -> None:
    # 12 questions: rag right on 7, prompt on 5; they disagree on 4 (3 for rag, 1 for prompt)
    rag = [True] * 7 + [False] * 5
    prompt = [True] * 4 + [False] * 3 + [True] + [False] * 4
    answers = [answer("prompt", f"q{i}", c) for i, c in enumerate(prompt)] + [
        answer("rag", f"q{i}", c) for i, c in enumerate(rag)
    ]
    (pair,) = compare_pipelines(answers, ["prompt", "rag"])
    assert (pair["n"], pair["only_a_right"], pair["only_b_right"]) == (12, 1, 3)
    assert pair["difference"] == pytest.approx(-2 / 12, abs=1e-4) and pair["mcnemar_p"] == 0.625
    assert pair["ci95"][0] < 0 < pair["ci95"][1]
    assert pair["verdict"] == "no clear difference at n = 12" and pair["questions"] == "all"


def test_a_clear_difference_names_the_pipeline_ahead_and_seen_questions_are_left_out() -> None:
    answers = [answer("rag", f"q{i}", True) for i in range(40)]
    answers += [answer("finetuned", f"q{i}", i < 5, seen=i < 5) for i in range(40)]  # right only where trained
    (pair,) = compare_pipelines(answers, ["finetuned", "rag"])
    assert (pair["questions"], pair["n"], pair["left_out_seen"]) == ("unseen", 35, 5)
    assert (pair["accuracy_a"], pair["accuracy_b"], pair["difference"]) == (0.0, 1.0, -1.0)
    assert pair["mcnemar_p"] == pytest.approx(2 / 2**35, rel=1e-5)
    assert pair["verdict"].startswith("rag ahead of finetuned by 100.0 points") and "n = 35" in pair["verdict"]
