"""Scores page: gold-QA evaluation runs (`triptych eval`) as a table, bar charts, pairwise differences and miss causes.

A fine-tuned pipeline is headlined by its score on questions its adapter was not trained on, with the
seen figure beside it; runs stored before these figures were kept say "not recorded".
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from triptych.evaluate import headline as hl
from triptych.evaluate.report import CAUSE_COLORS
from triptych.evaluate.store import list_runs
from triptych.ui import resources

settings = resources.page_start("Scores")
runs = list_runs(settings)
if not runs:
    st.info("No evaluation runs yet: run `triptych eval --domain <domain>` and reload this page.")
    st.stop()


def _latency(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, dict):
        return value.get("median", value.get("mean"))
    return value if isinstance(value, int | float) else None


def _seen(h: hl.Headline) -> str:
    """The seen-in-training 'correct' beside the headline, for the table."""
    return hl.seen_beside(h, "correct", lambda v: "–" if v is None else f"{100 * v:.1f} %")


labels = {r.run_id: f"{r.created_at} · {r.domain} · {r.questions} questions · {r.status}" for r in runs}
picked = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key="scores_run")
run = next(r for r in runs if r.run_id == picked)
heads = {p: hl.headline(p, m) for p, m in run.metrics.items()}
rows = [
    {
        "pipeline": p,
        "questions": "unseen in training" if h.basis == "unseen" else "all",
        "n": h.n,
        "correct": h.metrics.get("correct"),
        "correct 95 % CI": hl.interval_text(h.metrics),
        "seen in training": _seen(h),
        "contains": h.metrics.get("contains"),
        "F1": h.metrics.get("f1"),
        "first token p50 (s)": _latency(run.metrics[p], "ttft_s"),
        "total p50 (s)": _latency(run.metrics[p], "total_s"),
        "own total p50 (s)": _latency(run.metrics[p], "own_total_s"),
        "cost (USD)": run.metrics[p].get("cost_usd_total"),
        "errors": run.metrics[p].get("errors"),
    }
    for p, h in heads.items()
]
st.dataframe(rows, hide_index=True)
if any(h.basis == "unseen" or h.split_missing for h in heads.values()):
    st.caption(
        "Fine-tuned pipelines: scores on questions their adapter was not trained on; "
        "'seen in training' is the score where the question (or a paraphrase) was in its training set."
    )
charts = st.columns(3)
for col, (title, key) in zip(
    charts, (("Accuracy (correct)", "correct"), ("Latency: total p50 (s)", "total p50 (s)"),
             ("Cost (USD)", "cost (USD)")), strict=True
):  # fmt: skip
    with col:
        st.caption(title)
        st.bar_chart([{"pipeline": r["pipeline"], key: r[key] or 0} for r in rows], x="pipeline", y=key,
                     horizontal=True, height=220)  # fmt: skip

st.subheader("Differences between pipelines")
if run.comparisons is None:
    st.caption(f"Paired differences: {hl.NOT_RECORDED} for this run.")
elif run.comparisons:
    st.dataframe(
        [
            {
                "pair": f"{c['a']} vs {c['b']}",
                "questions": "unseen in training" if c.get("questions") == "unseen" else "all",
                "n": c["n"],
                "difference (points)": None if c.get("difference") is None else round(100 * c["difference"], 1),
                "95 % CI": "–" if not c.get("ci95") else f"{100 * c['ci95'][0]:+.1f} to {100 * c['ci95'][1]:+.1f}",
                "McNemar p": c["mcnemar_p"],
                "reading": c["verdict"],
            }
            for c in run.comparisons
        ],
        hide_index=True,
    )
    st.caption("Paired bootstrap interval (2000 resamples, fixed seed) and McNemar's exact test on the same questions.")

st.subheader("Why answers missed")
shown = hl.latest_per_domain(runs, run)
bars = hl.cause_rows(shown)
if all(hl.causes(m) is None for m in run.metrics.values()):
    st.caption(f"Miss causes: {hl.NOT_RECORDED} for this run.")
if bars:
    order = [c for c in CAUSE_COLORS if any(b["cause"] == c for b in bars)]
    chart = (
        alt.Chart(pd.DataFrame(bars))
        .mark_bar()
        .encode(
            x=alt.X("answers:Q", stack="zero", title="wrong answers"),
            y=alt.Y("bar:N", title=None, sort=None),
            color=alt.Color("cause:N", scale=alt.Scale(domain=order, range=[CAUSE_COLORS[c] for c in order])),
            order=alt.Order("cause_rank:Q"),
            tooltip=["domain", "pipeline", "cause", "answers"],
        )
        .transform_calculate(cause_rank=f"indexof({order!r}, datum.cause)")
    )
    st.altair_chart(chart, width="stretch")
    others = [r.run_id for r in shown if r.run_id != run.run_id]
    st.caption(
        "One cause per wrong answer: retrieval miss (no chunk given held the answer), read miss (one did), "
        "refused; fine-tuned: unseen fact or seen but wrong; prompt: wrong or refused."
        + (f" Other domains from their latest runs: {', '.join(others)}." if others else "")
    )
