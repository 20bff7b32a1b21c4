"""The Streamlit app through AppTest: it loads, and the Ask page answers with the real local model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")


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
def test_compare_page_answers_side_by_side(clean_env: Path, monkeypatch) -> None:
    """First start indexes the demo corpora; a preset question then fills three columns."""
    from triptych.ui.resources import app_settings, comparison

    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(REPO / "corpora"))
    monkeypatch.setenv("TRIPTYCH_CHROMA_PATH", str(clean_env / "indexes"))
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(clean_env / "data"))
    app_settings.clear()
    comparison.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=300).run()
        assert not at.exception
        at.selectbox(key="domain").select("hr_handbook").run()
        preset = at.selectbox(key="preset").options[1]
        at.selectbox(key="preset").select(preset).run()
        assert at.text_input(key="question").value == preset
        at.button[0].click().run()
        assert not at.exception
        assert [h.value for h in at.subheader] == ["Prompt", "RAG", "Fine-tuned"]
        badges = " ".join(m.value for m in at.markdown)
        assert badges.count("first token") == 2, (badges, [e.value for e in at.error])  # prompt and RAG timed
        assert any(i.value.startswith("not fine-tuned yet") for i in at.info)
        assert any(e.label.startswith("Sources (") for e in at.expander)
        assert any("Gold answer:" in i.value for i in at.info)
        assert not at.error
    finally:
        app_settings.clear()
        comparison.clear()
