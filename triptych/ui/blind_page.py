"""Blind vote page: a comparison's answers as A, B, C in a shuffled order; the methods are revealed after the vote.

Opened with `?blind=<comparison id>` (the shareable link: every viewer who opens it votes once per
session), or without it to ask a new question blind or pick a saved comparison. Votes go to
triptych/votes.py's store; the Scores page shows the per-domain leaderboard.
"""

from __future__ import annotations

import streamlit as st

from graphs.compare import Event
from graphs.registry import default_pipelines
from triptych import votes
from triptych.history import HistoryRecord, list_history, load_comparison, save_comparison
from triptych.ingest import known_domains
from triptych.qa import domain_qa
from triptych.ui import resources
from triptych.ui.votes_view import QUERY, render_ballot, render_reveal, share_url
from triptych.ui.widgets import escape_markdown

settings = resources.page_start("Blind vote")
st.caption(
    "The answers appear as A, B, C in a shuffled order, without their methods, sources or timings. "
    "Vote for the best one (or none): then you see which method wrote which."
)
viewer: str = st.session_state.setdefault("blind_viewer", votes.new_viewer_id())


def open_blind(record_id: str) -> None:
    """Show comparison `record_id` blind: its id goes into the URL, which is then the shareable link."""
    st.query_params[QUERY] = record_id
    st.rerun()


def ask_blind() -> None:
    """A new question to the default pipelines, answered out of sight (a count of finished answers only), saved."""
    resources.demo_indexes_ready(settings)
    domains = known_domains(settings)
    domain = st.selectbox("Domain", domains or [None], key="blind_domain")
    presets = [r.question for r in domain_qa(settings.corpora_dir, domain, "test") if r.answerable] if domain else []

    def use_preset() -> None:
        st.session_state["blind_question"] = st.session_state.get("blind_preset") or ""

    st.selectbox("Preset question (with a gold answer)", [None, *presets], key="blind_preset", on_change=use_preset)
    busy = resources.ingest_tracker().busy(domain)
    if busy:
        st.warning("Documents are being added to this domain right now: ask when the ingestion has finished.")
    with st.form("blind_ask"):
        question = st.text_input("Question", key="blind_question", placeholder="Ask about the documents…")
        submitted = st.form_submit_button("Ask blind", type="primary", disabled=busy)
    if not submitted or busy:
        return
    if not question.strip():
        st.warning("Type a question, or pick a preset one.")
        return
    pipelines = default_pipelines(settings, domain)
    bar = st.progress(0.0, text=f"0 of {len(pipelines)} answers ready (which is which stays hidden)")
    done: list[str] = []

    def on_event(event: Event) -> None:
        if event.kind == "done":
            done.append(event.pipeline)
            bar.progress(len(done) / len(pipelines), text=f"{len(done)} of {len(pipelines)} answers ready")

    results = resources.comparison().run(question.strip(), domain, pipelines, on_event=on_event)
    try:
        record = save_comparison(settings, question.strip(), domain, results)
    except OSError as exc:
        st.error(f"The comparison could not be saved, so it cannot be voted on: {escape_markdown(str(exc))}")
        return
    open_blind(record.id)


def pick_saved() -> None:
    """A saved comparison (from the history) to open blind."""
    records = [r for r in list_history(settings, limit=50) if len(votes.ballot(r)) >= 2]
    if not records:
        return
    labels = {r.id: f"{r.created_at} · {r.domain or '–'} · {r.question[:80]}" for r in records}
    picked = st.selectbox("Or open a saved comparison blind", list(labels), format_func=labels.__getitem__,
                          key="blind_saved")  # fmt: skip
    if st.button("Open blind", key="blind_open_saved"):
        open_blind(str(picked))


record_id = st.query_params.get(QUERY)
if not record_id:
    ask_blind()
    pick_saved()
    st.stop()

try:
    record: HistoryRecord = load_comparison(settings, str(record_id))
except (OSError, ValueError, KeyError, TypeError) as exc:
    reason = "there is no such comparison" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc}"
    st.error(
        f"Cannot open comparison {escape_markdown(str(record_id))} blind: {escape_markdown(reason)}. "
        "Check the link, or ask a new question blind."
    )
    if st.button("Ask a new question blind", key="blind_new_after_error"):
        st.query_params.clear()
        st.rerun()
    st.stop()

candidates = votes.ballot(record)
st.markdown(f"**Question:** {escape_markdown(record.question)}")
st.caption(f"Domain: {escape_markdown(record.domain or 'none')} · comparison {escape_markdown(record.id)}")
if len(candidates) < 2:
    st.warning(
        f"Only {len(candidates)} of this comparison's methods answered (the others failed or had no model yet): "
        "a blind vote needs at least two answers."
    )
    st.stop()

st.caption("Shareable link: each viewer who opens it votes once.")
st.code(share_url(record.id), language=None)
mine = votes.vote_of(settings, record.id, viewer)
if mine is None:
    choice = render_ballot(record, votes.shuffled(candidates, record.id, viewer))
    if choice is not None:
        try:
            outcome = votes.cast_vote(settings, record, viewer, choice)
        except (OSError, TimeoutError, ValueError) as exc:  # the lock's Timeout is a TimeoutError
            st.error(f"Your vote was not recorded: {escape_markdown(str(exc))}. Vote again.")
            st.stop()
        if not outcome.stored:
            st.toast("You had already voted on this comparison: your first vote counts.")
        st.rerun()
else:
    render_reveal(settings, record, mine)

if st.button("Ask a new question blind", key="blind_new"):
    st.query_params.clear()
    st.rerun()
