"""The Change a fact page through AppTest: the scripted change in one click, the race, Undo.

Scripted chat models stand in for the pipelines and hashed vectors for the embedding model; the
index is a real embedded Chroma under the test's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, QUESTION, app_env, markdown_text, scripted_comparison  # noqa: F401
from triptych import live_change
from triptych.index import open_index
from triptych.ingest import ensure_demo_indexes
from triptych.settings import load_settings
from triptych.testing import HashEmbedder

CHANGE = {
    "doc_id": "leave.md",
    "old_text": "Employees get 25 days of annual leave.",
    "new_text": "Employees get 27 days of annual leave.",
    "question": QUESTION,
    "old_answer": "25 days",
    "new_answer": "27 days",
}


@pytest.fixture
def indexed(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The demo domain with its scripted change, indexed into a real embedded Chroma."""
    (app_env / "corpora" / "hr_demo" / live_change.SCRIPT_FILE).write_text(json.dumps(CHANGE))
    settings = load_settings()
    embedder = HashEmbedder(model_name=settings.embedding_model)
    ensure_demo_indexes(settings, embedder=embedder)
    monkeypatch.setattr(live_change, "load_embedder", lambda *a, **k: embedder)
    return app_env


def test_the_scripted_change_races_and_undo_restores_the_document(indexed: Path, monkeypatch) -> None:
    scripted_comparison(
        monkeypatch, {"prompt": "Maybe 20 days.", "rag": "Employees get 27 days [1].", "finetuned": "25 days."}
    )
    at = AppTest.from_file(str(PAGES / "fact_page.py"), default_timeout=60)
    at.query_params["domain"] = "hr_demo"
    at.run()
    assert not at.exception
    assert "Scripted change" in markdown_text(at)

    at.button(key="fact_scripted").click().run()

    assert not at.exception
    settings = load_settings()
    assert "27 days" in open_index(settings, "hr_demo").document_text("leave.md")
    assert any("RAG answered with the new fact" in s.value for s in at.success)
    text = markdown_text(at)
    assert "the new fact" in text and "still the old fact" in text  # RAG follows, the fine-tuned column does not
    assert any("no adapter trained for this domain yet" in i.value for i in at.info)
    race = live_change.read_races(settings, "hr_demo")[-1]
    assert race["columns"]["finetuned"]["after"]["states_old"] is True

    at.button(key="fact_undo").click().run()

    assert not at.exception
    assert any("Restored the original leave.md" in s.value for s in at.success)
    assert "25 days" in open_index(settings, "hr_demo").document_text("leave.md")
    assert live_change.active_change(settings, "hr_demo") is None


def test_a_sentence_not_in_the_document_is_refused_with_the_fix(indexed: Path, monkeypatch) -> None:
    scripted_comparison(monkeypatch, {"prompt": "x", "rag": "y", "finetuned": "z"})
    at = AppTest.from_file(str(PAGES / "fact_page.py"), default_timeout=60)
    at.query_params["domain"] = "hr_demo"
    at.query_params["question"] = QUESTION
    at.run()
    at.text_area(key="fact_old").input("Employees get 40 days.")
    at.text_area(key="fact_new").input("Employees get 41 days.")
    at.button[-1].click().run()  # the form's submit button

    assert not at.exception
    assert any("does not occur in leave.md: copy it exactly" in e.value for e in at.error)
    assert live_change.active_change(load_settings(), "hr_demo") is None


def test_the_answers_just_compared_are_the_races_before(indexed: Path, monkeypatch) -> None:
    """Coming from Compare with the same question, the race does not ask the unchanged documents twice."""
    from graphs.result import PipelineResult
    from triptych.history import HistoryRecord

    scripted_comparison(monkeypatch, {"prompt": "No idea.", "rag": "Employees get 27 days [1].", "finetuned": "25."})
    compared = {
        "prompt": PipelineResult("prompt", "Prompt", answer="Maybe 20 days.", total_s=1.0),
        "rag": PipelineResult("rag", "RAG", answer="From Compare: employees get 25 days.", total_s=2.0),
        "rag@tuned": PipelineResult("rag", "RAG", answer="Under another setup: 25 days.", total_s=2.0),
    }
    at = AppTest.from_file(str(PAGES / "fact_page.py"), default_timeout=60)
    at.session_state["compare_last"] = HistoryRecord(
        "h1", "2999-01-01T00:00:00+00:00", QUESTION, "hr_demo", list(compared), compared, {}
    )
    at.query_params["domain"] = "hr_demo"
    at.run()
    at.button(key="fact_scripted").click().run()

    assert not at.exception
    race = live_change.read_races(load_settings(), "hr_demo")[-1]
    assert list(race["columns"]) == ["prompt", "rag"]  # the pipelines compared (a column of another setup is not)
    assert race["columns"]["rag"]["before"]["answer"] == "From Compare: employees get 25 days."
    assert race["columns"]["rag"]["after"]["answer"] == "Employees get 27 days [1]."
