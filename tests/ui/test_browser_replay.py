"""Replay in a real headless Chromium: a recorded pack plays back marked REPLAY on every column, with the
recorded answers and timing, while no model server is ever started and no index is opened.

The pack is recorded in the test from scripted pipelines; the app runs with an OpenAI endpoint and no
key, so it could not answer live at all. Saves a screenshot under test-output/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psutil
import pytest

from tests.ui.test_browser_e2e import OUTPUT, _playwright
from tests.unit.test_demo_pack import REPLIES, scripted
from triptych.browser_harness import AppStartError, RunningApp, chromium, running_app
from triptych.demo_pack import write_pack
from triptych.demo_record import QuestionToRecord, record_pack
from triptych.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]

QUESTION = "How many days of annual leave do employees get?"
WORD_DELAY_S = 0.25  # between two recorded words: the RAG answer takes about 2 s to appear


def model_servers(pid: int) -> list[str]:
    """The command lines of llama.cpp servers among the app's child processes."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "llama" in cmdline:
            found.append(cmdline)
    return found


def test_a_pack_replays_in_the_browser_without_the_model(tmp_path: Path) -> None:
    api = _playwright()
    runner = scripted({"prompt": WORD_DELAY_S, "rag": WORD_DELAY_S, "finetuned": WORD_DELAY_S})
    pack = record_pack(Settings(_env_file=None), runner, [QuestionToRecord(QUESTION, ["25 days"])],  # type: ignore[call-arg]
                       "hr_handbook", ["prompt", "rag", "finetuned"])  # fmt: skip
    pack_file = write_pack(pack, tmp_path / "data" / "packs" / "board-demo.json")
    recorded = json.loads(pack_file.read_text())["pack"]["comparisons"][0]
    duration = max(e[0] for e in recorded["events"])
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "browser_replay.png"
    # no key for an OpenAI endpoint: the app could not ask live; the replay needs none
    env = {"TRIPTYCH_AUTOTRAIN": "false", "TRIPTYCH_PROMPT__MODEL": "openai/gpt-4o-mini"}
    try:
        with running_app(tmp_path, extra_env=env) as app:
            played_s = replay_in_browser(api, app, tmp_path, recorded, shot)
            assert model_servers(app.proc.pid) == []  # the model server was never started
    except AppStartError as exc:
        pytest.fail(str(exc))
    assert not (tmp_path / "indexes").exists()  # no index was opened or built
    assert played_s >= duration * 0.9, (played_s, duration)  # played with the recorded timing, not all at once
    print(f"\nscreenshot: {shot}\nreplayed {duration:.2f} s of recording in {played_s:.2f} s (browser included)")


def replay_in_browser(api, app: RunningApp, tmp_path: Path, recorded: dict, shot: Path) -> float:  # type: ignore[no-untyped-def]
    """Open the Replay page, play the pack, check every column; the seconds from Play to the last total."""
    expect = api.expect
    with api.sync_playwright() as pw:
        browser = chromium(pw, tmp_path / "chromium-profile")
        page = browser.new_page()
        try:
            page.goto(f"{app.url}/replay_page", wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Replay")).to_be_visible(timeout=120_000)
            expect(page.get_by_role("combobox", name="Pack file")).to_have_value("board-demo.json", timeout=30_000)
            expect(page.get_by_text(re.compile(r"models: prompt: fake-prompt"))).to_be_visible()

            t0 = time.perf_counter()
            page.get_by_role("button", name=re.compile("Play")).click()
            expect(page.get_by_text(re.compile(r"Employees get 25 days of annual leave \[1\]\."))).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text(re.compile(r"total \d+\.\d+ s"))).to_have_count(3, timeout=30_000)
            played_s = time.perf_counter() - t0

            main = page.get_by_test_id("stMain")
            expect(main.get_by_text(re.compile(r"REPLAY$"))).to_have_count(3)  # one badge a column
            expect(main.get_by_text(re.compile(r"\bLIVE\b"))).to_have_count(0)
            for label in ("Prompt", "RAG", "Fine-tuned"):
                expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
            for pid, reply in REPLIES.items():  # the recorded answers and their recorded timings
                result = recorded["results"][pid]
                expect(page.get_by_text(reply, exact=True)).to_be_visible()
                expect(page.get_by_text(f"first token {result['ttft_s']:.2f} s").first).to_be_visible()
                expect(page.get_by_text(f"total {result['total_s']:.2f} s").first).to_be_visible()
            expect(page.get_by_text("Gold answer").first).to_be_visible()
            assert not page.get_by_test_id("stException").count()
            page.screenshot(path=str(shot), full_page=True)
            upload_packs(expect, page, tmp_path)
            return played_s
        except BaseException:
            page.screenshot(path=str(OUTPUT / "browser_replay_failure.png"), full_page=True)
            print(f"\n--- streamlit log (tail) ---\n{app.log_tail()}")
            raise
        finally:
            browser.close()


def upload_packs(expect, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A colleague's copy, uploaded: refused once edited by hand, played when unchanged."""
    original = tmp_path / "data" / "packs" / "board-demo.json"
    edited = tmp_path / "edited.json"
    edited.write_text(original.read_text().replace("About twenty days.", "Exactly 25 days."))
    page.get_by_text("Upload a pack").click()
    dropzone = page.get_by_test_id("stFileUploaderDropzoneInput")
    dropzone.set_input_files(str(edited))
    expect(page.get_by_text(re.compile(r"edited\.json was changed after recording"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name=re.compile("Play"))).to_have_count(0)
    dropzone.set_input_files(str(original))  # one file at a time: it takes the edited one's place
    expect(page.get_by_text(re.compile(r"models: prompt: fake-prompt"))).to_be_visible(timeout=30_000)
    page.get_by_role("button", name=re.compile("Play")).click()
    expect(page.get_by_text(re.compile(r"REPLAY$"))).to_have_count(3, timeout=30_000)
    expect(page.get_by_text("About twenty days.", exact=True)).to_be_visible(timeout=30_000)
