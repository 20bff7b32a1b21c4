"""The Scores page's cost card: measured figures per pipeline, the break-even in words, the chart, the report button."""

from __future__ import annotations

import base64
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, app_env  # noqa: F401 - the fixture
from tests.unit.test_stakeholder import stored
from triptych.settings import Settings


def test_scores_page_shows_the_cost_card_of_the_runs_domain(app_env: Path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("TRIPTYCH_COST_MACHINE_USD_PER_HOUR", "3.6")
    stored(app_env)  # an evaluation run, a comparison, an index build and an adapter run of "hr" under app_env/data
    at = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any(h.value == "Cost and break-even · hr" for h in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Prompt: per question": "$0.0013", "RAG: per question": "$0.003",
                       "Fine-tuned: per question": "$0.001"}  # fmt: skip
    said = " ".join(m.value for m in at.markdown)
    assert "RAG's slower answers cost more than Fine\\-tuned after about 440 questions" in said
    assert "440 questions \\(about 15 a day over 30 days\\)" in said  # 440 over the 30 days of the one-offs
    (chart,) = at.get("image")  # the cumulative-cost chart: the same SVG as the HTML report's
    svg = base64.b64decode(chart.proto.imgs[0].url.split(",", 1)[1]).decode()
    assert svg.count('class="cost-line"') == 3 and svg.count('class="break-even"') == 2
    (button,) = at.get("download_button")
    assert button.proto.label == "Download the stakeholder report (HTML)"


def test_without_answers_the_card_says_how_to_measure(app_env: Path) -> None:  # noqa: F811
    from tests.stored_runs import Answer, write_eval_run
    from triptych.qa import QARecord

    settings = Settings(_env_file=None, data_dir=app_env / "data")  # type: ignore[call-arg]
    q = QARecord("q1", "Which weekday?", "Tuesday", split="test")
    run_id = write_eval_run(settings, "hr", [q], {"q1": {"prompt": Answer("x", total_s=None)}})
    at = AppTest.from_file(str(PAGES / "scores_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="scores_run").value == run_id
    assert {m.label: m.value for m in at.metric} == {"Prompt: per question": "not recorded"}
    assert not at.get("image")
