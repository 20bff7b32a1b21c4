"""The Streamlit app through AppTest: it loads, and the Ask page answers with the real local model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_app_loads_on_embedded_defaults(clean_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Triptych"
    assert any("embedded defaults" in c.value for c in at.sidebar.caption)


def test_bad_configuration_stops_with_the_variable_to_set(clean_env: Path, monkeypatch) -> None:
    from triptych.ui.resources import app_settings

    app_settings.clear()
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "nosuch/model")
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        assert "TRIPTYCH_RAG__MODEL" in at.error[0].value
    finally:
        app_settings.clear()


@pytest.mark.integration
def test_ask_page_answers_with_the_local_model(clean_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="question").input("What is the capital of France?")
    at.button[0].click().run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert labels["Model"] == "smollm2-135m-instruct"
    assert labels["Total"].endswith(" s")
    assert any(md.value.strip() for md in at.markdown)
