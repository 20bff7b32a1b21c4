"""The Replay page through AppTest: a recorded pack plays back marked REPLAY, with its answers and timing;
the pack shipped with hr_handbook is listed beside the user's, marked, and played read-only; an edited
pack is refused; Compare's own columns say LIVE. No model, no index."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_pages import QUESTION, app_env, ask, markdown_text, scripted_comparison  # noqa: F401 - fixture
from tests.unit.test_demo_pack import REPLIES, SHIPPED, scripted
from triptych.demo_pack import read_pack, shipped_mark, write_pack
from triptych.demo_record import QuestionToRecord, record_pack
from triptych.settings import Settings

PAGE = str(Path(__file__).resolve().parents[2] / "triptych" / "ui" / "replay_page.py")
SHIPPED_LABEL = "hr_handbook/demo_pack.json (shipped with Triptych)"
DELAY_S = 0.1  # between two recorded words


@pytest.fixture
def pack_file(app_env: Path) -> Path:  # noqa: F811 - the fixture imported above
    """A pack recorded from scripted pipelines into the app's packs folder."""
    runner = scripted({"prompt": DELAY_S, "rag": DELAY_S, "finetuned": DELAY_S})
    pack = record_pack(Settings(_env_file=None), runner, [QuestionToRecord(QUESTION, ["25 days"])],  # type: ignore[call-arg]
                       "hr_demo", ["prompt", "rag", "finetuned"])  # fmt: skip
    return write_pack(pack, app_env / "data" / "packs" / "board.json")


def play(at: AppTest, speed: float) -> tuple[AppTest, float]:
    at.selectbox(key="replay_speed").select(speed).run()
    started = time.perf_counter()
    at.button(key="replay_play").click().run()
    return at, time.perf_counter() - started


def test_a_pack_replays_with_replay_on_every_column_its_answers_and_recorded_timings(pack_file: Path) -> None:
    recorded = json.loads(pack_file.read_text())["pack"]["comparisons"][0]
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="replay_file").value == "board.json"
    at, took = play(at, 1.0)
    assert not at.exception, at.exception
    text = markdown_text(at)
    assert text.count(":violet-badge[:material/replay: REPLAY]") == 3 and "LIVE" not in text
    assert [h.value for h in at.subheader] == ["Prompt", "RAG", "Fine-tuned"]
    assert "Employees get 25 days of annual leave \\[1\\]\\." in text and "About twenty days\\." in text
    for pid in ("prompt", "rag", "finetuned"):  # TTFT and total as recorded, not as replayed
        result = recorded["results"][pid]
        assert f"first token {result['ttft_s']:.2f} s" in text and f"total {result['total_s']:.2f} s" in text
    assert "**\\[1\\] Leave**" in text  # RAG's recorded source
    assert any("Gold answer:" in i.value for i in at.info)
    # played with the recorded timing: the run lasts as long as the recording did
    duration = max(e[0] for e in recorded["events"])
    assert duration >= 4 * DELAY_S and took >= duration * 0.95
    # instant: the same answers at once
    at, instant = play(at, 0.0)
    assert not at.exception and instant < took and "About twenty days\\." in markdown_text(at)


def test_the_shipped_pack_is_listed_after_the_users_marked_and_plays_read_only(
    pack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIPTYCH_CORPORA_DIR", str(SHIPPED.parents[1]))  # the repo's demo corpora
    shipped_bytes = SHIPPED.read_bytes()
    pack = read_pack(SHIPPED)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="replay_file").options == ["board.json", SHIPPED_LABEL]  # the user's own first
    at.selectbox(key="replay_file").select(SHIPPED_LABEL).run()
    assert not at.exception, at.exception
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any(c.startswith(f":blue-badge[:material/inventory_2: SHIPPED] {shipped_mark(pack)}") for c in captions)
    assert any("read-only" in c for c in captions)
    at.selectbox(key="replay_question").select(1).run()
    at, _ = play(at, 0.0)
    assert not at.exception, at.exception
    text = markdown_text(at)
    assert text.count(":violet-badge[:material/replay: REPLAY]") == len(pack.comparisons[1].pipelines)
    assert "Tuesday" in text and any("Gold answer:** Tuesday" in i.value for i in at.info)  # the recorded answer
    # played where it is: never copied into the packs folder, never changed
    assert [p.name for p in pack_file.parent.iterdir()] == ["board.json"] and SHIPPED.read_bytes() == shipped_bytes


@pytest.mark.parametrize("shipped", [False, True], ids=["recorded", "shipped"])
def test_a_pack_changed_after_recording_is_refused_on_the_page(
    app_env: Path,  # noqa: F811
    request: pytest.FixtureRequest,
    shipped: bool,
) -> None:
    if shipped:  # an edited copy of the shipped pack, in the place a shipped pack is looked for
        pack_path = app_env / "corpora" / "hr_handbook" / SHIPPED.name
        pack_path.parent.mkdir()
        pack_path.write_text(SHIPPED.read_text().replace("HR-TRV-2291", "HR-TRV-2292"))
    else:
        pack_path = request.getfixturevalue("pack_file")
        pack_path.write_text(pack_path.read_text().replace("About twenty days.", "Exactly 25 days."))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    if shipped:
        assert at.selectbox(key="replay_file").value == SHIPPED_LABEL
    shown = [e.value.replace("\\", "") for e in at.error]  # as shown, without markdown escapes
    assert any(f"{pack_path.name} was changed after recording" in e for e in shown), shown
    assert not at.button  # nothing to play


def test_without_packs_the_page_says_how_to_record_one(app_env: Path) -> None:  # noqa: F811
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("`triptych demo record --domain hr_handbook`" in i.value for i in at.info)


def test_compare_columns_are_marked_live(app_env: Path, monkeypatch) -> None:  # noqa: F811
    assert REPLIES  # the same scripted replies as the recordings
    scripted_comparison(monkeypatch, {"prompt": "Around 20 days.", "rag": "25 days [1].", "finetuned": "25 days"})
    at = ask(AppTest.from_file(str(Path(PAGE).with_name("compare_page.py")), default_timeout=60).run())
    assert not at.exception, at.exception
    text = markdown_text(at)
    assert text.count(":red-badge[:material/sensors: LIVE]") == 3 and "REPLAY" not in text


def test_replay_is_one_click_from_compare(app_env: Path) -> None:  # noqa: F811
    at = AppTest.from_file(str(Path(PAGE).parents[2] / "app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    links = [(e.proto.label, e.proto.page) for e in at.get("page_link")]
    assert links == [("Replay a recorded demo (no model needed)", "replay_page")]
