"""The Adjust panel in a real headless Chromium, with the real local model: edit the prompt column's system
prompt, ask again, see the old and new answers, save it as a setup, and find it named in the history with
the exact prompt used.

The app runs with an empty corpora folder (no demo index to build): the prompt column needs no documents.
Skipped (with the reason) when Chromium or Playwright is missing, except with CI=true.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ui.test_browser_e2e import OUTPUT, _playwright
from triptych.browser_harness import AppStartError, chromium, running_app

ANSWER_S = 420  # one generation on the embedded model, on 2 shared cores
QUESTION = "What is the capital of France?"
FRENCH = "You are {company_role}. Always answer in French, in five words at most."

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(60 + 3 * ANSWER_S)]


def test_edit_ask_again_save_as_setup_and_find_it_in_the_history(tmp_path: Path) -> None:
    api = _playwright()
    expect = api.expect
    (tmp_path / "corpora").mkdir()
    env = {"TRIPTYCH_AUTOTRAIN": "false", "TRIPTYCH_CORPORA_DIR": str(tmp_path / "corpora"),
           "TRIPTYCH_MAX_TOKENS": "48"}  # fmt: skip
    OUTPUT.mkdir(exist_ok=True)
    try:
        app_cm = running_app(tmp_path, extra_env=env)
        app = app_cm.__enter__()
    except AppStartError as exc:
        pytest.fail(str(exc))
    try:
        with api.sync_playwright() as pw:
            browser = chromium(pw, tmp_path / "chromium-profile")
            page = browser.new_page()
            try:
                page.goto(app.url, wait_until="domcontentloaded")
                expect(page.get_by_role("button", name="Compare")).to_be_visible(timeout=120_000)
                page.get_by_label("Question", exact=True).fill(QUESTION)
                page.get_by_role("button", name="Compare").click()
                totals = page.get_by_text(re.compile(r"total \d+\.\d+ s"))
                expect(totals.first).to_be_visible(timeout=ANSWER_S * 1000)

                panel = page.get_by_test_id("stExpander").filter(has_text="Adjust: Prompt")
                panel.get_by_text("Adjust: Prompt").click()
                system = panel.get_by_role("textbox", name="System prompt")
                expect(system).to_have_value(re.compile(r"^You are \{company_role\}\."))
                system.fill(FRENCH)
                system.press("Control+Enter")  # commit the text area
                expect(page.get_by_text(re.compile(r"Edited from setup default \(not saved"))).to_be_visible(
                    timeout=30_000
                )
                page.get_by_role("button", name="Ask again").click()
                expect(page.get_by_text("re-running Prompt only")).to_be_visible(timeout=30_000)
                expect(page.get_by_text("What changed")).to_be_visible(timeout=ANSWER_S * 1000)
                expect(page.get_by_text(re.compile(r"Before$"))).to_be_visible()
                expect(page.get_by_text(re.compile(r"Now$"))).to_be_visible()
                before = page.locator("[class*='st-key-before-prompt']").inner_text()
                page.screenshot(path=str(OUTPUT / "browser_setups_ask_again.png"), full_page=True)

                page.get_by_label("Setup name").fill("french")
                page.get_by_label("Setup name").press("Enter")
                page.get_by_role("button", name="Save as setup").click()
                expect(page.get_by_text(re.compile(r"Saved as setup french \([0-9a-f]{12}\)"))).to_be_visible(
                    timeout=30_000
                )
                saved = json.loads((tmp_path / "data" / "setups" / "french.json").read_text())
                assert saved["prompt"]["system"] == FRENCH

                page.goto(f"{app.url}/history_page", wait_until="domcontentloaded")
                expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=60_000)
                box = page.get_by_test_id("stSelectbox").filter(has_text="Reopen")
                box.locator("input").click()
                page.get_by_role("option").filter(has_text="setup french").first.click()
                expect(page.get_by_text(re.compile(r"^Prompt: setup french \([0-9a-f]{12}\)$"))).to_be_visible(
                    timeout=30_000
                )
                page.get_by_text(re.compile(r"^Setup french \(")).click()
                expect(page.get_by_text(FRENCH, exact=True)).to_be_visible()
                page.get_by_text("Show prompt").click()  # the exact messages sent, the role filled in
                expect(
                    page.get_by_text("You are a concise, careful assistant. Always answer in French", exact=False)
                ).to_be_visible(timeout=30_000)
                assert not page.get_by_test_id("stException").count()
                page.screenshot(path=str(OUTPUT / "browser_setups_history.png"), full_page=True)
            except BaseException:
                page.screenshot(path=str(OUTPUT / "browser_setups_failure.png"), full_page=True)
                print(f"\n--- streamlit log (tail) ---\n{app.log_tail()}")
                raise
            finally:
                browser.close()
    finally:
        app_cm.__exit__(None, None, None)
    print(f"\nold answer box: {before!r}")
