"""A stored answer that carries a remote image and links, opened on the History page in real Chromium.

A planted document can make a model write `![x](http://host/x.png)`: rendered as Markdown, the
browser fetches it as soon as the page shows the answer. A tiny HTTP server stands in for that host
and records every request; the page must show the answer's text and make none. No model is needed:
the answer is a history record written before the app starts.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from graphs.result import PipelineResult
from tests.ui.test_browser_e2e import _playwright
from triptych.browser_harness import REPO, chromium, running_app
from triptych.documents.chunking import Chunk
from triptych.history import save_comparison
from triptych.settings import Settings

OUTPUT = REPO / "test-output"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture
def tracker() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on a free local port that answers 200 and records each requested path."""
    requests: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requests
    finally:
        server.shutdown()
        server.server_close()


def _as_text(markdown: str) -> re.Pattern[str]:
    """The characters of `markdown` as the page shows them (an invisible word joiner may sit in `://`)."""
    return re.compile(re.escape(markdown).replace("://", ":\u2060?//"))


def test_stored_answer_fetches_no_remote_image(tmp_path: Path, tracker: tuple[int, list[str]]) -> None:
    api = _playwright()
    expect = api.expect
    port, requests = tracker
    host = f"127.0.0.1:{port}"
    answer = (
        f"Employees get 25 days of leave [1]. ![x](http://{host}/x.png)\n\n"
        f"Details: [the portal](http://{host}/link), http://{host}/bare and www.example.org."
    )
    source = Chunk(chunk_id="c1", doc_id="leave.md", source="leave.md", title="Leave", n=1, score=0.9,
                   text=f"Employees get 25 days of leave. ![s](http://{host}/source.png)")  # fmt: skip
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    result = PipelineResult(pipeline="rag", label="RAG", answer=answer, sources=[source], total_s=1.0)
    save_comparison(settings, "How many days of leave?", "hr", {"rag": result})

    # no corpora: no demo index to build, the app is ready at once
    with running_app(tmp_path, extra_env={"TRIPTYCH_CORPORA_DIR": str(tmp_path / "no-corpora")}, startup_s=90) as app:
        url = app.url
        with api.sync_playwright() as pw:
            browser = chromium(pw, tmp_path / "chromium-profile")
            try:
                page = browser.new_page()
                page.goto(f"{url}/history_page", wait_until="domcontentloaded")
                expect(page.get_by_text("Employees get 25 days of leave [1].")).to_be_visible(timeout=90_000)
                time.sleep(2)  # give any image or prefetch time to arrive
                assert requests == [], f"the page requested {requests} from the planted host"
                page.get_by_text("Sources (1)").click()
                expect(page.get_by_text(_as_text(f"![s](http://{host}/source.png)"))).to_be_visible(timeout=30_000)
                time.sleep(1)
                expect(page.get_by_text(_as_text(f"![x](http://{host}/x.png)"))).to_be_visible()  # shown as text
                assert page.locator(f"img[src*='{host}']").count() == 0
                links = page.locator(f"a[href*='{host}'], a[href*='example.org']")
                assert links.count() == 0, [links.nth(i).evaluate("e => e.outerHTML") for i in range(links.count())]
                assert not page.get_by_test_id("stException").count()
                OUTPUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT / "browser_output_history.png"), full_page=True)
            finally:
                browser.close()
    assert requests == [], f"the page requested {requests} from the planted host"
