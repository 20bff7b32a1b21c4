"""The Fine-tune page's QA upload: a bad file shows each problem with its line; a good one is trained on."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, app_env  # noqa: F401 - the throw-away folders fixture


def test_a_qa_upload_shows_its_problems_or_is_kept_for_training(app_env: Path) -> None:  # noqa: F811
    at = AppTest.from_file(str(PAGES / "finetune_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    bad = json.dumps({"id": "q1", "question": "Leave?", "answer": "28 days", "alt_answers": "28 days"}) + "\n"
    bad += json.dumps({"id": "q2", "question": "Pay?", "answer": "monthly", "answerable": "false"}) + "\n"
    at.file_uploader(key="ft_qa_upload").upload("mine.jsonl", bad.encode()).run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # as read on the page, without markdown escapes
    assert errors[0] == "mine.jsonl was not kept: fix these lines and upload it again."
    assert errors[1].startswith("mine.jsonl:1: field 'alt_answers' must be a list of strings")
    assert errors[2].startswith("mine.jsonl:2: field 'answerable' must be true or false")
    assert not (app_env / "data" / "qa" / "hr_demo.jsonl").exists()

    good = "".join(json.dumps({"id": f"q{i}", "question": f"Fact {i}?", "answer": f"{i}"}) + "\n" for i in range(10))
    at.file_uploader(key="ft_qa_upload").upload("mine.jsonl", good.encode()).run()
    assert not at.exception, at.exception
    assert [s.value.replace("\\", "") for s in at.success] == [
        "10 questions kept: 7 to train on, 3 held out for testing."
    ]
    assert (app_env / "data" / "qa" / "hr_demo.jsonl").read_text() == good
    at.button(key="ft_qa_remove").click().run()
    assert not at.exception and not (app_env / "data" / "qa" / "hr_demo.jsonl").exists()
