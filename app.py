"""Triptych's Streamlit entry: `streamlit run app.py`. Pages live in triptych/ui/."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import streamlit as st  # noqa: E402

from triptych.ui import resources  # noqa: E402
from triptych.ui.login import apply_upload_limit, require_login  # noqa: E402

st.set_page_config(page_title="Triptych", page_icon="🪟", layout="wide")
apply_upload_limit()  # TRIPTYCH_MAX_UPLOAD_MB as the server's own limit
require_login()  # an exposed app without a login is refused; with one, nothing below runs until it is given

pages = [
    st.Page("triptych/ui/compare_page.py", title="Compare", icon=":material/view_column:", default=True),
    st.Page("triptych/ui/documents_page.py", title="Documents", icon=":material/description:"),
    st.Page("triptych/ui/history_page.py", title="History", icon=":material/history:"),
    st.Page("triptych/ui/replay_page.py", title="Replay", icon=":material/replay:"),
    st.Page("triptych/ui/blind_page.py", title="Blind vote", icon=":material/how_to_vote:"),
    st.Page("triptych/ui/fact_page.py", title="Change a fact", icon=":material/edit_note:"),
    st.Page("triptych/ui/scores_page.py", title="Scores", icon=":material/leaderboard:"),
    st.Page("triptych/ui/finetune_page.py", title="Fine-tune", icon=":material/model_training:"),
    st.Page("triptych/ui/settings_page.py", title="Settings", icon=":material/settings:"),
]
resources.start_autotrain()  # first start: build the demo indexes, then train their adapters in the background
st.navigation(pages).run()
