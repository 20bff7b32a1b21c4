"""Playing a recorded comparison back in the page: columns marked REPLAY, tokens at their recorded times.

Nothing here asks a model or opens an index: everything shown comes from the demo pack.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from graphs.registry import PIPELINES
from triptych.demo_pack import RecordedComparison, TimedEvent
from triptych.ui.widgets import column_header, escape_markdown, render_details, render_final, safe_markdown

REPLAY_PAGE = "triptych/ui/replay_page.py"
SPEEDS = {1.0: "1× (as recorded)", 0.5: "0.5×", 2.0: "2×", 4.0: "4×", 0.0: "instant"}


def link_to_replay() -> None:
    """A one-click link to the Replay page (left out where a page runs alone, outside the app's navigation)."""
    try:
        st.page_link(REPLAY_PAGE, label="Replay a recorded demo (no model needed)", icon=":material/replay:")
    except StreamlitPageNotFoundError:  # AppTest of a single page: there is no navigation to link into
        pass


def show_gold(gold: list[str]) -> None:
    """The gold answer under the columns."""
    if gold:
        st.info(f"**Gold answer:** {escape_markdown(' / '.join(gold))}", icon=":material/verified:")


def play(
    comp: RecordedComparison,
    speed: float = 1.0,
    *,
    show_prompt: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Play `comp` back: each event at its recorded time divided by `speed` (0: all at once).

    Tokens that fall due together are drawn together; each column ends with the recorded result
    (answer, TTFT and total as recorded), then its sources and score as on the Compare page.
    """
    columns = st.columns(len(comp.pipelines))
    boxes, stats, texts = {}, {}, {p: "" for p in comp.pipelines}
    for col, pid in zip(columns, comp.pipelines, strict=True):
        with col:
            spec = PIPELINES.get(pid)
            column_header(comp.results[pid].label, spec.what_changed if spec else "", mode="REPLAY")
            stats[pid] = st.empty()
            boxes[pid] = st.empty()
        stats[pid].caption("waiting…")

    dirty: set[str] = set()
    done: set[str] = set()

    def flush() -> None:
        for pid in dirty - done:
            boxes[pid].markdown(safe_markdown(texts[pid]))
        dirty.clear()

    def apply(event: TimedEvent) -> None:
        pid = event.pipeline
        if event.kind == "queued":
            stats[pid].caption(f"queued: {escape_markdown(event.text or 'waiting for the local model')}")
        elif event.kind == "started":
            stats[pid].caption("generating…")
        elif event.kind == "token":
            texts[pid] += event.text
            dirty.add(pid)
        elif event.kind == "done" and pid not in done:
            done.add(pid)
            render_final(boxes[pid], stats[pid], comp.results[pid])

    start = clock()
    for event in comp.events:
        wait = (event.t / speed if speed > 0 else 0.0) - (clock() - start)
        if wait > 0:
            flush()
            sleep(wait)
        apply(event)
    flush()
    for pid in comp.pipelines:  # a recording cut short still ends with what was recorded
        if pid not in done:
            render_final(boxes[pid], stats[pid], comp.results[pid])
    for col, pid in zip(columns, comp.pipelines, strict=True):
        with col:
            render_details(comp.results[pid], show_prompt=show_prompt, gold_answers=comp.gold_answers, key=pid)
    show_gold(comp.gold_answers)
