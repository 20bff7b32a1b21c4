"""Replay page: a demo pack played back with its original timing, every column marked REPLAY.

Works without the model, the network or the keys: nothing here starts a model server or opens an
index. Packs come from the packs folder (<data dir>/packs, where `triptych demo record` writes
them), from the demo corpora (a pack shipped with Triptych, played where it is: read-only), or are
uploaded; a pack changed after recording, or of an unknown format version, is refused.
"""

from __future__ import annotations

import streamlit as st

from triptych.demo_pack import DemoPack, PackError, available_packs, loads, packs_dir, read_pack, shipped_mark
from triptych.settings import ConfigError
from triptych.ui import resources
from triptych.ui.replay_view import SPEEDS, play, show_gold
from triptych.ui.widgets import escape_markdown, render_results

st.title("Replay")
st.caption(
    "Comparisons recorded with `triptych demo record`, played back as they happened: tokens appear with "
    "their recorded timing. No model, network or keys needed."
)
try:
    settings = resources.app_settings()  # only for the packs folder: a replay needs no endpoint or key
except ConfigError as exc:
    settings = None
    st.warning(f"The packs folder is unknown until the configuration is fixed ({exc}); uploading a pack works.")

FOLDER, UPLOAD = "Recorded or shipped", "Upload a pack"
source = st.radio("Pack", [FOLDER, UPLOAD], horizontal=True, key="replay_source")
pack: DemoPack | None = None
pack_name = ""
shipped = False
if source == FOLDER and settings is not None:
    files = {f.label: f for f in available_packs(settings)}  # the user's, then those shipped with the demo corpora
    if not files:
        st.info(
            f"No packs in {escape_markdown(str(packs_dir(settings)))} yet: record one with "
            "`triptych demo record --domain hr_handbook`, or upload one."
        )
    else:
        pack_name = st.selectbox("Pack file", list(files), key="replay_file")
        shipped = files[pack_name].shipped
        try:
            pack = read_pack(files[pack_name].path)  # a shipped pack is checked like any other
        except PackError as exc:
            st.error(escape_markdown(str(exc)), icon=":material/gpp_bad:")
elif source == UPLOAD:
    upload = st.file_uploader("Demo pack (.json)", type=["json"], key="replay_upload")
    if upload is not None:
        pack_name = upload.name
        try:
            pack = loads(upload.getvalue(), upload.name)
        except PackError as exc:
            st.error(escape_markdown(str(exc)), icon=":material/gpp_bad:")
if pack is not None and not pack.comparisons:
    st.info("This pack holds no comparisons.")
if pack is None or not pack.comparisons:
    st.stop()
assert pack is not None  # st.stop() raises

domain = f"domain **{escape_markdown(pack.domain or '–')}**, Triptych {escape_markdown(pack.triptych_version)}"
if shipped:  # its mark: where it comes from, when and on what it was recorded
    st.caption(
        f":blue-badge[:material/inventory_2: SHIPPED] {escape_markdown(shipped_mark(pack))} · {domain} · "
        "read-only: played from the demo corpus, never copied or deleted"
    )
else:
    recorded = pack.created_at + (f" on {pack.machine}" if pack.machine else "")
    st.caption(f"Recorded {escape_markdown(recorded)} · {domain} · models: {escape_markdown(pack.describe_models())}")
with st.expander("Settings it was recorded with (keys are never stored)"):
    st.json(pack.settings, expanded=False)

comparisons = pack.comparisons
left, right = st.columns([3, 1])
index = left.selectbox(
    "Recorded question", range(len(comparisons)), format_func=lambda i: comparisons[i].question, key="replay_question"
)
speed = right.selectbox("Speed", list(SPEEDS), format_func=SPEEDS.__getitem__, key="replay_speed")
show_prompt = st.toggle("Show prompt", key="replay_show_prompt", help="Reveal the exact messages each pipeline sent.")
chosen = comparisons[index]
this = (pack_name, pack.created_at, index)

if st.button("Play", type="primary", key="replay_play", icon=":material/play_arrow:"):
    st.caption(f"Replaying {escape_markdown(chosen.question)} · {chosen.duration_s:.1f} s as recorded")
    play(chosen, speed, show_prompt=show_prompt)
    st.session_state["replay_last"] = this
elif st.session_state.get("replay_last") == this:
    st.caption(f"Replayed: {escape_markdown(chosen.question)}")
    render_results(chosen.results, show_prompt=show_prompt, gold_answers=chosen.gold_answers, mode="REPLAY")
    show_gold(chosen.gold_answers)
