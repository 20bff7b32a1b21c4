"""The blind vote through AppTest: nothing names a method before the vote, the reveal after, one vote per
viewer, the link from Compare and the leaderboard on Scores (scripted pipelines, no model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, QUESTION, app_env, ask, scripted_comparison  # noqa: F401 (fixture)
from triptych import votes
from triptych.history import list_history, save_comparison
from triptych.settings import Settings

ANSWERS = {"prompt": "Around 20 days.", "rag": "Employees get 25 days of annual leave [1].", "finetuned": "25 days"}
# what would give a method away: its name, a timing or cost badge, a model name, a sources list
NAMES = re.compile(r"Prompt|RAG|Fine-tuned|fine-tuned|first token|\$0\.|model:|Sources \(")


def page_text(at: AppTest) -> str:
    """Every piece of text the page shows (markdown, captions, headings, buttons, alerts, code)."""
    parts = [e.value for kind in ("markdown", "caption", "subheader", "title", "success", "info", "warning", "error",
                                  "code") for e in at.get(kind)]  # fmt: skip
    parts += [b.label for b in at.button] + [e.label for e in at.expander]
    return "\n".join(str(p) for p in parts)


def saved_comparison(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """Ask the three scripted pipelines on Compare; the saved comparison's id."""
    scripted_comparison(monkeypatch, dict(ANSWERS))
    at = ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    assert not at.exception, at.exception
    return list_history(Settings(_env_file=None))[0].id  # type: ignore[call-arg]


def open_blind(record_id: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / "blind_page.py"), default_timeout=60)
    at.query_params["blind"] = record_id
    return at.run()


def test_compare_links_each_saved_comparison_to_its_blind_vote(app_env: Path, monkeypatch) -> None:  # noqa: F811
    scripted_comparison(monkeypatch, dict(ANSWERS))
    at = ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    record_id = list_history(Settings(_env_file=None))[0].id  # type: ignore[call-arg]
    links = [m.value for m in at.markdown if "Vote on it blind" in m.value]
    assert links == [f":material/how_to_vote: [Vote on it blind: shuffled A, B, C, methods revealed after the vote]"
                     f"(blind_page?blind={record_id})"]  # fmt: skip


def test_the_ballot_names_no_method_and_the_vote_reveals_them(app_env: Path, monkeypatch) -> None:  # noqa: F811
    record_id = saved_comparison(app_env, monkeypatch)
    at = open_blind(record_id)
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader] == ["Answer A", "Answer B", "Answer C"]
    before = page_text(at)
    assert not NAMES.search(before), NAMES.search(before)
    assert "\\[1\\]" not in before  # RAG's citation mark would name it
    assert QUESTION.replace(".", "\\.") in before or QUESTION in before
    assert f"blind_page?blind={record_id}" in before  # the shareable link
    viewer = at.session_state["blind_viewer"]
    order = votes.shuffled(list(ANSWERS), record_id, viewer)
    # every element key on the page is a letter, never a pipeline id (keys reach the browser as CSS classes)
    assert {b.key for b in at.button} >= {"blind_vote_A", "blind_vote_B", "blind_vote_C", "blind_vote_none"}
    assert not any(p in (b.key or "") for b in at.button for p in ANSWERS)

    at.button(key="blind_vote_B").click().run()
    assert not at.exception, at.exception
    chosen = order[1]
    label = {"prompt": "Prompt", "rag": "RAG", "finetuned": "Fine-tuned"}
    assert [h.value for h in at.subheader] == [
        f"{letter} was {label[p]}" + (" :material/how_to_vote:" if p == chosen else "")
        for letter, p in zip("ABC", order, strict=True)
    ]
    assert at.success[0].value.replace("\\", "") == f"Your vote: answer B — {label[chosen]}."  # as shown
    after = page_text(at)
    assert "first token" in after and "Sources (1)" in after and "Gold answer:" in after
    assert f"Votes on this comparison so far (1): Prompt {int(chosen == 'prompt')}" in after
    stored = json.loads((app_env / "data" / "votes" / "votes.jsonl").read_text())
    assert (stored["comparison_id"], stored["viewer"], stored["choice"]) == (record_id, viewer, chosen)
    assert stored["domain"] == "hr_demo" and stored["question"] == QUESTION

    at.run()  # the same session again: still revealed, no second ballot
    assert not at.exception and not [b for b in at.button if b.key == "blind_vote_A"]


def test_two_viewers_each_vote_once_and_scores_shows_the_leaderboard(app_env: Path, monkeypatch) -> None:  # noqa: F811
    record_id = saved_comparison(app_env, monkeypatch)
    first, second = open_blind(record_id), open_blind(record_id)
    assert first.session_state["blind_viewer"] != second.session_state["blind_viewer"]
    first.button(key="blind_vote_A").click().run()
    second.button(key="blind_vote_none").click().run()
    assert not first.exception and not second.exception
    assert second.success[0].value == "Your vote: none of the answers — None is right."
    assert "Votes on this comparison so far (2)" in page_text(second)

    scores = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not scores.exception, scores.exception
    assert "**hr\\_demo** · 2 votes" in page_text(scores)
    table = scores.table[0].value
    assert list(table["votes"]) == [2, 2, 2, 2]  # each method was on both ballots; 'none' of all votes
    assert sorted(table["wins"]) == [0, 0, 1, 1]
    assert table["method"].iloc[-1] == "None is right" and table["win rate"].iloc[-1] == "50 %"


def test_asking_blind_saves_the_comparison_and_opens_its_ballot(app_env: Path, monkeypatch) -> None:  # noqa: F811
    scripted_comparison(monkeypatch, dict(ANSWERS))
    at = AppTest.from_file(str(PAGES / "blind_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    at.selectbox(key="blind_domain").select("hr_demo").run()
    at.selectbox(key="blind_preset").select(QUESTION).run()
    at.button[0].click().run()  # "Ask blind"
    assert not at.exception, at.exception
    record_id = list_history(Settings(_env_file=None))[0].id  # type: ignore[call-arg]
    assert at.query_params["blind"] == record_id  # the page's URL is now the shareable link
    assert [h.value for h in at.subheader] == ["Answer A", "Answer B", "Answer C"]
    assert not NAMES.search(page_text(at))


def test_a_method_without_an_answer_is_left_off_the_ballot(app_env: Path, monkeypatch) -> None:  # noqa: F811
    scripted_comparison(monkeypatch, {"prompt": "Around 20 days.", "rag": LookupError("no index for hr_demo"),
                                      "finetuned": "25 days"})  # fmt: skip
    ask(AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run())
    at = open_blind(list_history(Settings(_env_file=None))[0].id)  # type: ignore[call-arg]
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader] == ["Answer A", "Answer B"]
    assert not NAMES.search(page_text(at)) and "index" not in page_text(at)


def test_a_wrong_link_says_so_and_offers_a_new_question(app_env: Path) -> None:  # noqa: F811
    at = open_blind("20991231-000000-nothere0")
    assert not at.exception, at.exception
    assert "there is no such comparison" in at.error[0].value
    at = open_blind("../../etc/passwd")
    assert not at.exception and "no such comparison" in at.error[0].value


def test_a_comparison_saved_without_a_domain_can_be_voted_on(app_env: Path) -> None:  # noqa: F811
    from graphs.result import PipelineResult

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    results = {p: PipelineResult(p, p.title(), answer=a) for p, a in (("prompt", "x"), ("finetuned", "y"))}
    record = save_comparison(settings, "Why?", None, results)
    at = open_blind(record.id)
    at.button(key="blind_vote_A").click().run()
    assert not at.exception, at.exception
    assert votes.vote_count(settings, None) == 1
