"""The blind-vote store: one vote per viewer per comparison, safe with many writers; the shuffle; the leaderboard."""

from __future__ import annotations

import json
import math
import multiprocessing
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest

from graphs.registry import PIPELINES
from graphs.result import PipelineResult
from triptych import votes
from triptych.history import HistoryRecord
from triptych.settings import Settings

THREE = ("prompt", "rag", "finetuned")
CMP = "20261130-120000-abcdef01"  # a saved comparison's id


def settings_in(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]


def record(record_id: str = CMP, domain: str | None = "hr_demo", **answers: str) -> HistoryRecord:
    """A saved comparison; an answer starting with '!' is that pipeline's error, '' its 'not fine-tuned' notice."""
    answers = answers or {"prompt": "About 20 days.", "rag": "25 days [1].", "finetuned": "25 days."}
    results = {}
    for key, text in answers.items():
        pid, _, setup = key.partition("@")  # a second column of a pipeline: `rag@top4`, labelled "RAG · top4"
        label = PIPELINES[pid].label + (f" · {setup}" if setup else "")
        if text.startswith("!"):
            results[key] = PipelineResult(pid, label, error=text[1:])
        elif not text:
            results[key] = PipelineResult(pid, label, notice="not fine-tuned yet")
        else:
            results[key] = PipelineResult(pid, label, answer=text, total_s=1.0)
    return HistoryRecord(record_id, "2026-11-30T12:00:00+00:00", "How many leave days?", domain, list(results),
                         results, {})  # fmt: skip


# --- the ballot and its shuffle ---------------------------------------------------------------------


def test_the_ballot_leaves_off_columns_whose_error_or_notice_would_name_their_method() -> None:
    rec = record(prompt="About 20 days.", rag="!no index for hr_demo", finetuned="")
    assert votes.ballot(rec) == ["prompt"]
    assert votes.ballot(record()) == list(THREE)


def test_the_shuffle_is_a_permutation_stable_per_viewer_and_varying_with_viewer_and_comparison() -> None:
    orders = [tuple(votes.shuffled(THREE, "cmp-1", f"viewer-{i}")) for i in range(120)]
    assert all(sorted(o) == sorted(THREE) for o in orders)
    # every one of the 6 orders turns up, so no position ever tells the method
    assert set(orders) == set(permutations(THREE))
    for position in range(3):
        assert {o[position] for o in orders} == set(THREE)
    assert votes.shuffled(THREE, "cmp-1", "viewer-7") == list(orders[7])  # the same viewer sees the same order
    by_comparison = {tuple(votes.shuffled(THREE, f"cmp-{i}", "viewer-1")) for i in range(60)}
    assert by_comparison == set(permutations(THREE))


def test_letters_name_columns_in_the_order_shown() -> None:
    assert votes.letters(["rag", "prompt", "finetuned"]) == {"rag": "A", "prompt": "B", "finetuned": "C"}


# --- the store --------------------------------------------------------------------------------------


def test_one_vote_per_viewer_per_comparison(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    rec = record()
    first = votes.cast_vote(settings, rec, "viewer-1", "rag")
    again = votes.cast_vote(settings, rec, "viewer-1", "prompt")
    assert first.stored and not again.stored and again.vote == first.vote
    other = votes.cast_vote(settings, rec, "viewer-2", votes.NONE)
    elsewhere = votes.cast_vote(settings, record("20261130-120500-bbbbbbbb"), "viewer-1", "prompt")
    assert other.stored and elsewhere.stored
    assert votes.tally(settings, rec.id) == {"rag": 1, votes.NONE: 1}
    assert votes.vote_of(settings, rec.id, "viewer-1").choice == "rag"  # type: ignore[union-attr]
    stored = [json.loads(line) for line in votes.votes_path(settings).read_text().splitlines()]
    assert len(stored) == 3
    assert stored[0]["order"] == votes.shuffled(THREE, rec.id, "viewer-1")  # the order this viewer saw
    assert stored[0]["question"] == "How many leave days?" and stored[0]["domain"] == "hr_demo"


def test_a_choice_off_the_ballot_or_an_unsaved_comparison_is_refused_with_the_options(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with pytest.raises(ValueError, match="expected one of prompt, rag, none"):
        votes.cast_vote(settings, record(prompt="a", rag="b", finetuned=""), "v", "finetuned")
    with pytest.raises(ValueError, match="not saved"):
        votes.cast_vote(settings, record(record_id=""), "v", "rag")
    with pytest.raises(ValueError, match="needs at least two"):
        votes.cast_vote(settings, record(prompt="a", rag="!down", finetuned=""), "v", "prompt")
    assert votes.read_votes(settings) == []


def test_a_torn_last_line_is_skipped_and_the_next_vote_is_kept(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    rec = record()
    votes.cast_vote(settings, rec, "viewer-1", "rag")
    with votes.votes_path(settings).open("a") as fh:
        fh.write('{"comparison_id": "20261130-120000-abcdef01", "vie')  # a crash mid-write
    votes.cast_vote(settings, rec, "viewer-2", "prompt")
    assert [(v.viewer, v.choice) for v in votes.read_votes(settings)] == [("viewer-1", "rag"), ("viewer-2", "prompt")]


ROUNDS = 8


def _vote_many(data_dir: str, worker: int, n: int, start: Any) -> tuple[list[bool], list[bool]]:
    """In a process of its own: ROUNDS times, when every worker is ready, one viewer shared by all workers
    votes; then n viewers of its own vote. Whether each shared and each own vote was stored."""
    settings = settings_in(Path(data_dir))
    rec = record()
    shared = []
    for r in range(ROUNDS):
        start.wait()
        shared.append(votes.cast_vote(settings, rec, f"shared-{r}", THREE[worker % 3]).stored)
    own = [votes.cast_vote(settings, rec, f"w{worker}-v{i}", THREE[i % 3]).stored for i in range(n)]
    return shared, own


def test_concurrent_writers_in_several_processes_lose_nothing_and_count_a_viewer_once(tmp_path: Path) -> None:
    workers, n = 4, 20
    ctx = multiprocessing.get_context("spawn")  # separate interpreters, as separate app processes are
    with ctx.Manager() as manager, ctx.Pool(workers) as pool:
        start = manager.Barrier(workers)
        results = pool.starmap(_vote_many, [(str(tmp_path), w, n, start) for w in range(workers)])
    # each shared viewer is counted once, whichever process came first
    assert [sum(shared[r] for shared, _ in results) for r in range(ROUNDS)] == [1] * ROUNDS
    assert all(all(own) for _, own in results)  # every viewer of its own was stored
    settings = settings_in(tmp_path)
    lines = votes.votes_path(settings).read_text().splitlines()
    assert len(lines) == workers * n + ROUNDS
    assert all(json.loads(line) for line in lines)  # no interleaved or torn line
    assert len({v.viewer for v in votes.read_votes(settings)}) == workers * n + ROUNDS


# --- the leaderboard --------------------------------------------------------------------------------


def _crafted(settings: Settings) -> None:
    """10 votes in hr_demo: RAG 6, prompt 2, none 2; fine-tuned was on only 4 ballots and won none.
    Plus 3 votes in another domain that must not count."""
    three = record()
    two = record("20261130-130000-cccccccc", prompt="About 20 days.", rag="25 days [1].", finetuned="")
    choices = [(three, "rag")] * 2 + [(three, "prompt"), (three, votes.NONE)]
    choices += [(two, "rag")] * 4 + [(two, "prompt"), (two, votes.NONE)]
    for i, (rec, choice) in enumerate(choices):
        assert votes.cast_vote(settings, rec, f"v{i}", choice).stored
    other = record("20261130-140000-dddddddd", domain="legal")
    for i in range(3):
        votes.cast_vote(settings, other, f"v{i}", "finetuned")


def test_the_leaderboard_counts_wins_over_ballots_with_wilson_intervals(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    _crafted(settings)
    rows = {r.pipeline: r for r in votes.leaderboard(settings, "hr_demo")}
    assert [r.pipeline for r in votes.leaderboard(settings, "hr_demo")] == ["rag", "prompt", "finetuned", "none"]
    assert (rows["rag"].wins, rows["rag"].votes, rows["rag"].label) == (6, 10, "RAG")
    assert (rows["prompt"].wins, rows["prompt"].votes) == (2, 10)
    assert (rows["finetuned"].wins, rows["finetuned"].votes) == (0, 4)  # only on the ballots it answered
    assert (rows["none"].wins, rows["none"].votes, rows["none"].label) == (2, 10, "None is right")
    assert rows["rag"].win_rate == 0.6
    # Wilson 95 % for 6/10 is 0.313-0.832, for 0/4 it is 0-0.490 (textbook values)
    assert rows["rag"].ci95 == pytest.approx((0.3127, 0.8318), abs=5e-4)
    assert rows["finetuned"].ci95 == pytest.approx((0.0, 0.4899), abs=5e-4)
    assert rows["prompt"].ci95 == pytest.approx((0.0567, 0.5098), abs=5e-4)
    assert votes.vote_count(settings, "hr_demo") == 10 and votes.vote_count(settings, "legal") == 3
    legal = votes.leaderboard(settings, "legal")
    assert [(r.pipeline, r.wins, r.votes) for r in legal] == [("finetuned", 3, 3), ("prompt", 0, 3), ("rag", 0, 3),
                                                              ("none", 0, 3)]  # fmt: skip
    assert votes.voted_domains(settings) == ["hr_demo", "legal"]
    assert all(math.isclose(r.to_dict()["win_rate"], r.wins / r.votes) for r in legal)


def test_two_columns_of_one_pipeline_under_two_setups_are_two_rows_with_their_labels(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    rec = record(rag="25 days [1].", **{"rag@top4": "25 days of leave [2]."})
    assert votes.cast_vote(settings, rec, "v1", "rag@top4").stored
    assert votes.cast_vote(settings, rec, "v2", "rag").stored
    assert votes.cast_vote(settings, rec, "v3", "rag@top4").stored
    rows = votes.leaderboard(settings, "hr_demo")
    assert [(r.pipeline, r.label, r.wins, r.votes) for r in rows] == [
        ("rag@top4", "RAG · top4", 2, 3), ("rag", "RAG", 1, 3), ("none", "None is right", 0, 3)
    ]  # fmt: skip


def test_a_leaderboard_per_question_and_for_a_domain_without_votes(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    _crafted(settings)
    assert votes.leaderboard(settings, "hr_demo", question="something never asked") == []
    assert votes.leaderboard(settings, "finance") == []
    assert sum(r.wins for r in votes.leaderboard(settings, "hr_demo", question="How many leave days?")) == 10


# --- the command line -------------------------------------------------------------------------------


def test_the_votes_command_prints_each_domains_leaderboard(clean_env: Path) -> None:
    from typer.testing import CliRunner

    from triptych.cli import app

    runner = CliRunner()
    settings = settings_in(clean_env / "data")  # where the CLI looks: TRIPTYCH_DATA_DIR defaults to ./data
    empty = runner.invoke(app, ["votes", "--domain", "hr_demo"])
    assert empty.exit_code == 2 and "no blind votes for 'hr_demo'; domains with votes: none" in empty.output
    _crafted(settings)
    result = runner.invoke(app, ["votes", "--json"])
    assert result.exit_code == 0, result.output
    boards = json.loads(result.output)
    assert [(b["domain"], b["votes"]) for b in boards] == [("hr_demo", 10), ("legal", 3)]
    rag = boards[0]["rows"][0]
    assert (rag["pipeline"], rag["wins"], rag["votes"], rag["win_rate"]) == ("rag", 6, 10, 0.6)
    one = runner.invoke(app, ["votes", "--domain", "legal", "--json"])
    assert [b["domain"] for b in json.loads(one.output)] == ["legal"]


def test_the_ballot_hides_citation_marks_that_only_rag_writes() -> None:
    from triptych.ui.votes_view import blind_text

    assert blind_text("Employees get 25 days [1]. Ask HR [2, 3].") == "Employees get 25 days. Ask HR."
    assert blind_text("Weeks 32 and 33 [1][2]") == "Weeks 32 and 33"
    assert blind_text("Section [A] stays; so does [1a]") == "Section [A] stays; so does [1a]"


def test_concurrent_sessions_of_one_app_process_count_a_viewer_once(tmp_path: Path) -> None:
    """Streamlit runs each session in a thread of one process: the same lock keeps them apart."""
    import threading

    settings = settings_in(tmp_path)
    rec = record()
    threads, rounds = 6, 20
    start = threading.Barrier(threads)
    stored: list[tuple[int, bool]] = []

    def session(worker: int) -> None:
        for r in range(rounds):
            start.wait()
            stored.append((r, votes.cast_vote(settings, rec, f"shared-{r}", THREE[worker % 3]).stored))

    pool = [threading.Thread(target=session, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert [sum(ok for r, ok in stored if r == i) for i in range(rounds)] == [1] * rounds
    assert len(votes.read_votes(settings)) == rounds
