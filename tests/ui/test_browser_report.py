"""The stakeholder page made by `triptych report`, opened in real headless Chromium, on screen and printed to PDF.

No app and no model: the page is written from stored runs, then read as a stakeholder would, from the
file. The screenshot and the A4 PDF land in test-output/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ui.test_browser_e2e import _playwright
from tests.unit.test_stakeholder import stored
from triptych.browser_harness import REPO, chromium
from triptych.cli import app
from triptych.stakeholder import SECTIONS

OUTPUT = REPO / "test-output"
A4_PRINTABLE_PX = 688  # 210 mm less 2 x 14 mm margins, at 96 px an inch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def test_report_reads_in_a_browser_and_prints_to_pdf_whole(
    tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _playwright()
    expect = api.expect
    settings = stored(tmp_path)
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TRIPTYCH_COST_MACHINE_USD_PER_HOUR", "3.6")
    page_file = tmp_path / "hr.html"
    result = CliRunner().invoke(app, ["report", "--domain", "hr", "--html", str(page_file)])
    assert result.exit_code == 0, result.output
    OUTPUT.mkdir(exist_ok=True)
    shot, pdf = OUTPUT / "browser_report_stakeholder.png", OUTPUT / "browser_report_stakeholder.pdf"

    with api.sync_playwright() as pw:
        browser = chromium(pw, tmp_path / "chromium-profile")
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            for s in SECTIONS:
                expect(page.locator(f"section#{s.id} h2")).to_have_text(s.title)
            expect(page.locator("section#methods svg")).to_be_visible()
            expect(page.locator("section#examples .example")).to_have_count(3)
            expect(page.locator("section#cost svg.cost-chart")).to_be_visible()
            expect(page.locator("section#cost .break-even")).to_have_count(2)
            expect(page.get_by_text("RAG's slower answers cost more than Fine-tuned after about")).to_be_visible()
            expect(page.locator("section#change-a-fact")).to_contain_text("No change-a-fact race of hr")
            expect(page.locator("section#blind-vote")).to_contain_text("No blind votes on hr")
            assert requests == [page_file.as_uri()], f"the page fetched {requests[1:]}"
            page.screenshot(path=str(shot), full_page=True)

            # printed on A4: nothing wider than the printable width, so nothing is cut off at the edge
            page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1000})
            page.emulate_media(media="print")
            too_wide = page.evaluate(
                """w => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > w + 1)
                    .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""
                , A4_PRINTABLE_PX,
            )  # fmt: skip
            assert too_wide == [], f"wider than an A4 page: {too_wide[:5]}"
            page.pdf(path=str(pdf), format="A4", print_background=True,
                     margin={"top": "14mm", "bottom": "14mm", "left": "14mm", "right": "14mm"})  # fmt: skip
        finally:
            browser.close()

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf.read_bytes()))
    text = " ".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 2
    for s in SECTIONS:
        assert s.title in text, f"{s.title} is missing from the printed PDF"
    for words in ("How much leave do I accrue?", "Who signs <b>expense</b> claims?", "after 1,000 questions"):
        assert words in " ".join(text.split()), f"{words!r} is missing from the printed PDF"
