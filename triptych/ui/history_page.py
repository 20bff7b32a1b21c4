"""History page: every saved comparison, reopened side by side, and exported as JSON, CSV or HTML."""

from __future__ import annotations

import streamlit as st

from graphs.result import PipelineResult
from triptych.history import list_history, to_csv, to_html, to_json
from triptych.ui import resources
from triptych.ui.adjust import record_setup_lines, record_setup_names, show_record_setups
from triptych.ui.widgets import escape_markdown, render_results

settings = resources.page_start("History")
records = list_history(settings)
if not records:
    st.info("No comparisons yet: ask a question on the Compare page, and it is saved here.")
    st.stop()


def _cell(result: PipelineResult) -> str:
    """One pipeline in the list: its total time, 'error', or its notice."""
    if result.error:
        return "error"
    return f"{result.total_s or 0:.1f} s" if result.answer else (result.notice or "–")


domains = sorted({r.domain or "–" for r in records})
only = st.multiselect("Domains", domains, default=domains, key="history_domains")
shown = [r for r in records if (r.domain or "–") in only]
st.caption(f"{len(shown)} of {len(records)} comparison(s), newest first · kept in {settings.data_dir / 'history'}")
st.dataframe(
    [
        {
            "when (UTC)": r.created_at,
            "domain": r.domain,
            "question": r.question,
            **{res.label: _cell(res) for res in r.results.values()},
        }
        for r in shown
    ],
    hide_index=True,
)

exports = st.columns(3)
exports[0].download_button("Export JSON", to_json(shown), "triptych-history.json", "application/json", key="hx_json")
exports[1].download_button("Export CSV", to_csv(shown), "triptych-history.csv", "text/csv", key="hx_csv")
exports[2].download_button("Export HTML report", to_html(shown), "triptych-history.html", "text/html", key="hx_html")

if shown:
    labels = {r.id: f"{r.created_at} · {r.domain or '–'} · {r.question[:80]}{record_setup_names(r)}" for r in shown}
    picked = st.selectbox("Reopen", list(labels), format_func=labels.__getitem__, key="history_pick")
    record = next(r for r in shown if r.id == picked)
    st.subheader(escape_markdown(record.question))
    show_prompt = st.toggle("Show prompt", key="history_show_prompt")
    for line in record_setup_lines(record):
        st.caption(escape_markdown(line))
    render_results(record.results, show_prompt=show_prompt)
    show_record_setups(record)
    with st.expander("Settings used (no keys)"):
        st.json(record.settings, expanded=False)
