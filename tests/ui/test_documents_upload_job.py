"""Documents page: a click while an upload is being indexed no longer drops the rest of the batch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import PAGES, app_env  # noqa: F401 - the throw-away folders fixture
from tests.unit.test_ingest_jobs import GatedEmbedder

FILES = [("leave.md", b"# Leave\n\nStaff get 28 days of leave.", "text/markdown"),
         ("travel.txt", b"Trains over four hours go first class.", "text/plain"),
         ("expenses.txt", b"Receipts are needed above 25 EUR.", "text/plain")]  # fmt: skip


def test_indexing_goes_on_in_the_background_whatever_is_clicked(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import triptych.ingest
    from triptych.ui.ingest_jobs import ingest_jobs

    embedder = GatedEmbedder("all-MiniLM-L6-v2")  # a slow model: nothing is embedded until the gate opens
    monkeypatch.setattr(triptych.ingest, "LazyEmbedder", lambda name, batch_size: embedder)
    at = AppTest.from_file(str(PAGES / "documents_page.py"), default_timeout=60).run()
    at.selectbox(key="docs_domain").select("hr_demo").run()
    at.file_uploader(key="docs_upload").set_value(FILES).run()
    at.button(key="docs_ingest").click().run()  # returns at once: the page no longer indexes in its own run
    assert not at.exception, at.exception
    progress = [p.proto.text.replace("\\", "") for p in at.get("progress")]  # as read, without markdown escapes
    assert progress == ["Indexing into hr_demo: 0/3 file(s)"]
    saved = list((app_env / "data" / "incoming").glob("hr_demo--*/*/*"))
    assert sorted(p.name for p in saved) == ["expenses.txt", "leave.md", "travel.txt"]  # on disk before indexing

    at.selectbox(key="docs_domain").select("hr_demo").run()  # the user clicks on: the old page stopped here
    embedder.gate.set()
    job = ingest_jobs().wait(at.session_state["docs_job"], timeout=60)
    assert job is not None and job.status == "done"
    deadline = time.monotonic() + 10
    at.run()
    while "docs_report" not in at.session_state and time.monotonic() < deadline:
        at.run()
    assert not at.exception, at.exception
    assert at.session_state["docs_report"].summary().startswith("hr_demo: 3 stored, 0 unchanged, 0 refused")
    listed = next(d.value for d in at.dataframe if "document" in d.value.columns)  # the list, not the indexes
    assert sorted(listed["document"]) == ["expenses.txt", "leave.md", "travel.txt"]
    assert not list((app_env / "data" / "incoming").glob("hr_demo--*"))
