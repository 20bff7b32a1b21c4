"""What the blind vote shows: the link to it from Compare, the blind ballot, the reveal and the leaderboard.

Before a viewer votes nothing on the page names a method: columns are lettered in a shuffled order,
only the answers are shown (citation marks [n] removed, since only RAG writes them), and no model,
source, prompt, timing, token count or cost appears; element keys name letters, never pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from graphs.registry import PIPELINES
from triptych import votes
from triptych.evaluate.metrics import without_citations
from triptych.history import HistoryRecord
from triptych.qa import domain_qa
from triptych.settings import Settings
from triptych.ui.widgets import escape_markdown, render_details, render_final, safe_markdown

BLIND_PAGE = "triptych/ui/blind_page.py"
PAGE_PATH = "blind_page"  # the page's URL path (from its file name)
QUERY = "blind"  # ?blind=<comparison id>


def share_url(record_id: str) -> str:
    """The link that opens a comparison blind: absolute when the browser's URL is known, else relative."""
    here = (st.context.url or "").removesuffix("/")
    base = here.removesuffix(f"/{PAGE_PATH}")
    path = f"{PAGE_PATH}?{QUERY}={record_id}"
    return f"{base}/{path}" if base else path


def blind_link(record_id: str) -> None:
    """One click from Compare to the blind vote on a saved comparison (a plain link where pages are not registered)."""
    label = "Vote on it blind: shuffled A, B, C, methods revealed after the vote"
    try:
        st.page_link(BLIND_PAGE, label=label, icon=":material/how_to_vote:", query_params={QUERY: record_id})
    except StreamlitPageNotFoundError:  # a page run on its own (AppTest): no navigation to link through
        st.markdown(f":material/how_to_vote: [{label}]({share_url(record_id)})")


def blind_text(answer: str) -> str:
    """An answer as the ballot shows it: citation marks like [1] or [1, 2] removed (they would name RAG)."""
    return without_citations(answer)


def gold_answers(settings: Settings, record: HistoryRecord) -> list[str]:
    """The gold answers when the comparison asked a preset question of its domain, else []."""
    if not record.domain:
        return []
    qa = domain_qa(settings.corpora_dir, record.domain, "test")
    return next((r.gold_answers for r in qa if r.question == record.question.strip()), [])


def label_of(record: HistoryRecord, column: str) -> str:
    """A column's display name as the comparison labelled it (NONE: 'None is right')."""
    if column == votes.NONE:
        return votes.NONE_LABEL
    result = record.results.get(column)
    return result.label if result is not None and result.label else column


def render_ballot(record: HistoryRecord, order: Sequence[str]) -> str | None:
    """The answers lettered in `order`, each with its vote button, and 'None is right'; the choice clicked, if any."""
    letter = votes.letters(order)
    choice = None
    for col, pid in zip(st.columns(len(order)), order, strict=True):
        with col:
            st.subheader(f"Answer {letter[pid]}")
            result = record.results[pid]
            st.markdown(safe_markdown(blind_text(result.answer)))
            if result.cut_short:
                st.caption(":material/content_cut: this answer was cut short")
            if st.button(f"Vote {letter[pid]}", key=f"blind_vote_{letter[pid]}", type="primary"):
                choice = pid
    if st.button("None is right", key="blind_vote_none", icon=":material/block:"):
        choice = votes.NONE
    return choice


def render_reveal(settings: Settings, record: HistoryRecord, vote: votes.Vote) -> None:
    """After the vote: the viewer's choice, each column with its method, model, timings, sources; the count."""
    order = [p for p in vote.order if p in record.results] or votes.ballot(record)
    letter = votes.letters(order)
    chosen = "none of the answers" if vote.choice == votes.NONE else f"answer {letter.get(vote.choice, '?')}"
    st.success(
        f"Your vote: {chosen} — {escape_markdown(label_of(record, vote.choice))}.", icon=":material/how_to_vote:"
    )
    gold = gold_answers(settings, record)
    for col, pid in zip(st.columns(len(order)), order, strict=True):
        with col:
            result = record.results[pid]
            picked = " :material/how_to_vote:" if pid == vote.choice else ""
            st.subheader(f"{letter[pid]} was {label_of(record, pid)}{picked}")
            if spec := PIPELINES.get(result.pipeline):
                st.caption(f":material/tune: {escape_markdown(spec.what_changed)}")
            render_final(st.empty(), st.empty(), result)
            render_details(result, show_prompt=False, gold_answers=gold, key=f"reveal_{pid}")
    if gold:
        st.info(f"**Gold answer:** {escape_markdown(' / '.join(gold))}", icon=":material/verified:")
    counts = votes.tally(settings, record.id)
    total = sum(counts.values())
    parts = [f"{escape_markdown(label_of(record, p))} {counts.get(p, 0)}" for p in [*votes.ballot(record), votes.NONE]]
    st.caption(f"Votes on this comparison so far ({total}): " + " · ".join(parts))


def show_leaderboards(settings: Settings) -> None:
    """The Scores page's blind-vote section: per domain, each method's win rate with its 95 % interval."""
    domains = votes.voted_domains(settings)
    st.subheader("Blind votes")
    if not domains:
        st.caption("No blind votes yet: after a comparison on Compare, follow 'Vote on it blind' and share the link.")
        return
    for domain in domains:
        rows = votes.leaderboard(settings, domain)
        n = votes.vote_count(settings, domain)
        st.markdown(f"**{escape_markdown(domain or 'no domain')}** · {n} vote{'s' if n != 1 else ''}")
        st.table(
            [
                {
                    "method": r.label,
                    "win rate": f"{100 * r.win_rate:.0f} %",
                    "95 % CI": f"{100 * r.ci95[0]:.0f}–{100 * r.ci95[1]:.0f} %",
                    "wins": r.wins,
                    "votes": r.votes,
                }
                for r in rows
            ],
            hide_index=True,
            border="horizontal",
        )
    st.caption(
        "Viewers' choice of the best answer with the methods hidden: wins / votes on ballots the method was on, "
        "Wilson 95 % interval; 'None is right' is the share of all votes."
    )
