"""The Compare page's Adjust panels through AppTest, with scripted models: edit, ask again, save as setup."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from streamlit.testing.v1 import AppTest

from tests.fakes import ScriptedChat
from tests.ui.test_pages import PAGES, QUESTION, app_env, ask, scripted_comparison  # noqa: F401 - app_env: fixture
from triptych.settings import Settings
from triptych.setups import default_setup, save_setup

PIRATE = "You are {company_role}. Answer like a pirate."


class ReadsItsPrompt(ScriptedChat):
    """Answers 'Arr, 25 days.' when its system prompt asks for a pirate, else 'Around 20 days.'."""

    async def _astream(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> AsyncIterator[ChatGenerationChunk]:
        self.reply = "Arr, 25 days." if "pirate" in str(messages[0].content) else "Around 20 days."
        async for chunk in super()._astream(messages, *args, **kw):
            yield chunk


def history(app_env: Path) -> list[dict]:  # noqa: F811
    """The saved comparisons, oldest first (by when they were written: two made in one second share a time stamp)."""
    files = sorted((app_env / "data" / "history").glob("*.json"), key=lambda p: p.stat().st_ctime_ns)
    return [json.loads(p.read_text()) for p in files]


def compare_page() -> AppTest:
    return AppTest.from_file(str(PAGES / "compare_page.py"), default_timeout=60).run()


def test_ask_again_reruns_only_the_edited_column_shows_before_and_now_and_saves_as_a_setup(
    app_env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chats = {"prompt": ReadsItsPrompt(calls=[]), "rag": ScriptedChat(reply="25 days [1].", calls=[]),
             "finetuned": ScriptedChat(reply="25 days", calls=[])}  # fmt: skip
    scripted_comparison(monkeypatch, chats)
    at = ask(compare_page())
    assert not at.exception, at.exception
    assert [len(c.calls) for c in chats.values()] == [1, 1, 1]

    at.text_area(key="adj:prompt.system").input(PIRATE).run()
    assert not at.exception, at.exception
    assert any("not saved" in c.value for c in at.caption)
    at.button(key="ask_again").click().run()
    assert not at.exception, at.exception
    assert [len(c.calls) for c in chats.values()] == [2, 1, 1]  # only the prompt column asked again
    captions = [c.value for c in at.caption]
    assert captions.count(":material/history: Before") == 1 and captions.count(":material/fiber_new: Now") == 1
    text = "\n".join(m.value for m in at.markdown)
    assert "Around 20 days\\." in text and "Arr, 25 days\\." in text  # old above new
    assert ":red-background[~~Around 20~~]" in text and ":green-background[Arr, 25]" in text  # what changed
    records = history(app_env)
    assert len(records) == 2
    asked_again = records[1]["id"]
    second = records[1]["setups"]
    assert second["columns"]["prompt"]["name"] == "unsaved"
    assert second["columns"]["rag"]["name"] == "unsaved"  # same content as default for RAG, same column hash
    used = second["used"][second["columns"]["prompt"]["hash"]]
    assert used["prompt"]["system"] == PIRATE

    at.text_input(key="save_setup_name").input("pirate").run()
    at.button(key="save_setup").click().run()
    assert not at.exception, at.exception
    assert any("Saved as setup pirate" in s.value for s in at.success)
    assert at.selectbox(key="setup").value == "pirate"
    saved = json.loads((app_env / "data" / "setups" / "pirate.json").read_text())
    assert saved["prompt"]["system"] == PIRATE
    named = next(r for r in history(app_env) if r["id"] == asked_again)["setups"]
    assert named["columns"]["prompt"]["name"] == "pirate" and named["used"][used_hash(named)]["name"] == "pirate"
    # the answers stay on the page, and nothing is left to re-ask under the saved setup
    at.button(key="ask_again").click().run()
    assert [len(c.calls) for c in chats.values()] == [2, 1, 1]
    assert any("Nothing changed since the last answers" in i.value for i in at.info)

    page = AppTest.from_file(str(PAGES / "history_page.py"), default_timeout=60).run()
    picks = page.selectbox(key="history_pick").options  # the same question twice: the setup tells them apart
    page.selectbox(key="history_pick").select_index(
        next(i for i, o in enumerate(picks) if o.endswith("setup pirate"))
    ).run()
    assert not page.exception, page.exception
    assert any("setup pirate" in c.value for c in page.caption), "\n".join(c.value for c in page.caption)
    assert any(e.label.startswith("Setup pirate (") for e in page.expander)
    assert PIRATE in [t.value for t in page.text]  # the exact prompt the answer came from


def used_hash(setups: dict) -> str:
    return setups["columns"]["prompt"]["hash"]


def test_a_bad_prompt_is_refused_in_its_panel_with_the_reason(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    scripted_comparison(monkeypatch, {"prompt": "a", "rag": "b", "finetuned": "c"})
    at = compare_page()
    at.selectbox(key="domain").select("hr_demo").run()
    at.text_area(key="adj:rag.user").input("Question: {question}").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("neither the system prompt nor the user template has \\{context\\}" in e for e in errors), errors
    assert at.button(key="ask_again").disabled and at.button(key="save_setup").disabled
    at.text_area(key="adj:rag.user").input("{context}\n\nQuestion: {question}").run()
    at.text_area(key="adj:prompt.system").input("You are {persona}.").run()
    assert any("unknown placeholder \\{persona\\}" in e.value for e in at.error)
    at.selectbox(key="preset").select(QUESTION).run()
    at.button[0].click().run()  # Compare
    assert any("adjustments are refused" in w.value for w in at.warning)
    assert not (app_env / "data" / "history").exists()  # nothing was asked


def test_one_pipeline_under_two_setups_side_by_side(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    settings = Settings(_env_file=None, data_dir=app_env / "data")  # type: ignore[call-arg]
    save_setup(
        settings, default_setup(settings).edited({"rag.system": "Reply in three words, cite [n]."}).renamed("terse")
    )
    chats = {"prompt": ScriptedChat(reply="a", calls=[]), "rag": ScriptedChat(reply="25 days [1].", calls=[]),
             "finetuned": ScriptedChat(reply="c", calls=[])}  # fmt: skip
    scripted_comparison(monkeypatch, chats)
    at = compare_page()
    at.multiselect(key="pipelines").set_value(["rag"]).run()
    at.selectbox(key="setup_other").select("terse").run()
    at = ask(at)
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader] == ["RAG", "RAG · terse"]
    systems = [str(call[0].content) for call in chats["rag"].calls]
    assert sorted(systems)[0] == "Reply in three words, cite [n]." and len(systems) == 2
    record = history(app_env)[0]
    assert {k: c["name"] for k, c in record["setups"]["columns"].items()} == {"rag": "default", "rag@terse": "terse"}


def test_switching_domains_clears_a_preset_question(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    other = app_env / "corpora" / "it_demo"
    (other / "docs").mkdir(parents=True)
    (other / "docs" / "vpn.md").write_text("# VPN\n\nThe VPN client is WireGuard.\n")
    qa = {"id": "i1", "question": "Which VPN client is used?", "answer": "WireGuard", "split": "test"}
    (other / "qa.jsonl").write_text(json.dumps(qa) + "\n")
    scripted_comparison(monkeypatch, {"prompt": "a", "rag": "b", "finetuned": "c"})
    at = compare_page()
    at.selectbox(key="domain").select("hr_demo").run()
    at.selectbox(key="preset").select(QUESTION).run()
    assert at.text_input(key="question").value == QUESTION
    at.selectbox(key="domain").select("it_demo").run()
    assert not at.exception, at.exception
    assert at.text_input(key="question").value == ""  # not asked against the wrong documents
    assert at.selectbox(key="preset").value is None
    assert at.selectbox(key="preset").options == ["None", "Which VPN client is used?"]
    # a question typed by hand (and sent) is the user's own: it stays
    at.text_input(key="question").input("Who approves travel?")
    at.button[0].click().run()
    at.selectbox(key="domain").select("hr_demo").run()
    assert at.text_input(key="question").value == "Who approves travel?"
