"""Change a fact, live, in the real app in headless Chromium, on the hr_handbook demo domain.

From a comparison on Compare, one click opens the Change a fact page with the domain carried over;
the scripted change (summer shutdown weeks 32 and 33 become 30 and 31) races the columns: RAG states
the new fact, the fine-tuned column is retrained from the page (2 steps) and then shows its retrain
time measured from that run, and Undo restores the original. A screenshot goes to test-output/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.test_browser_e2e import ANSWERS_S, FIRST_START_S, OUTPUT, TRAINING_S, _playwright
from triptych.browser_harness import REPO, AppStartError, chromium, running_app, select
from triptych.live_change import read_races, scripted_change
from triptych.settings import Settings

DOMAIN = "hr_handbook"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.timeout(FIRST_START_S + 3 * ANSWERS_S + TRAINING_S + 180),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app on a free port with fresh indexes and data (its URL and data folder); stopped after."""
    tmp_path = tmp_path_factory.mktemp("fact-app")
    env = {"TRIPTYCH_AUTOTRAIN": "false", "TRIPTYCH_FINETUNE_MAX_STEPS": "2"}  # the retrain from the page is short
    try:
        with running_app(tmp_path, extra_env=env) as running:
            try:
                yield running.url, tmp_path / "data"
            finally:
                print(f"\n--- streamlit log (tail) ---\n{running.log_tail()}")
    except AppStartError as exc:
        pytest.fail(str(exc))


def test_change_a_fact_live_in_a_real_browser(app: tuple[str, Path], tmp_path: Path) -> None:
    """Compare, then the scripted change: RAG answers the new fact, the retrain time is shown, Undo restores."""
    api = _playwright()
    expect = api.expect
    url, data_dir = app
    change = scripted_change(REPO / "corpora", DOMAIN)
    assert change is not None
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "browser_fact_change.png"

    with api.sync_playwright() as pw:
        browser = chromium(pw, tmp_path / "chromium-profile")
        page = browser.new_page()
        try:
            page.goto(url, wait_until="domcontentloaded")
            expect(page.get_by_role("button", name="Compare")).to_be_visible(timeout=FIRST_START_S * 1000)
            select(page, "Domain", DOMAIN)
            select(page, "Preset question", change.question)
            expect(page.get_by_label("Question", exact=True)).to_have_value(change.question, timeout=30_000)
            page.get_by_role("button", name="Compare").click()
            expect(page.get_by_text(re.compile(r"total \d+\.\d+ s"))).to_have_count(2, timeout=ANSWERS_S * 1000)

            page.get_by_role("link", name=re.compile("Change a fact in these sources")).click()
            expect(page.get_by_role("heading", name="Change a fact")).to_be_visible(timeout=60_000)
            # the domain came along
            expect(page.get_by_text("Scripted change", exact=True)).to_be_visible(timeout=60_000)

            t0 = time.perf_counter()
            page.get_by_role("button", name="Run the scripted change").click()
            headline = page.get_by_text(re.compile(r"RAG answered with the new fact [\d.]+ s after the change"))
            expect(headline).to_be_visible(timeout=2 * ANSWERS_S * 1000)
            race_s = time.perf_counter() - t0
            expect(page.get_by_text("is changed (since")).to_be_visible()
            expect(page.get_by_text("no adapter trained for this domain yet")).to_be_visible()

            t1 = time.perf_counter()
            page.get_by_role("button", name="Retrain the fine-tuned column").click()
            retrain = page.get_by_text(re.compile(r"retraining takes \d+\.\d\d s/step × 2 steps = \d+ s"))
            expect(retrain).to_be_visible(timeout=TRAINING_S * 1000)
            retrain_s = time.perf_counter() - t1
            assert not page.get_by_test_id("stException").count(), page.get_by_test_id("stException").all_inner_texts()
            page.screenshot(path=str(shot), full_page=True)

            page.get_by_role("button", name="Undo: restore the original").click()
            expect(page.get_by_text(f"Restored the original {change.doc_id}")).to_be_visible(timeout=120_000)
            expect(page.get_by_role("button", name="Run the scripted change")).to_be_visible()
            assert not page.get_by_test_id("stException").count(), page.get_by_test_id("stException").all_inner_texts()
        except BaseException:
            failed = OUTPUT / "browser_fact_failure.png"
            page.screenshot(path=str(failed), full_page=True)
            print(f"\nfailure screenshot: {failed}")
            raise
        finally:
            browser.close()

    race = read_races(Settings(_env_file=None, data_dir=data_dir), DOMAIN)[-1]  # type: ignore[call-arg]
    assert race["columns"]["rag"]["after"]["states_new"] is True
    assert race["columns"]["rag"]["before"]["states_old"] is True
    print(f"\nscreenshot: {shot}")
    print(f"race (ask, change, re-index, ask again) {race_s:.1f} s; re-index {race['reindex_s']:.2f} s")
    print(f"RAG had the new fact {race['rag_new_fact_s']:.1f} s after the change; retrain {retrain_s:.1f} s")
    for pid, column in race["columns"].items():
        print(f"{pid}: before {column['before']['answer']!r} -> after {column['after']['answer']!r}")
