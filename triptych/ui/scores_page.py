"""Scores page: gold-QA evaluation runs (`triptych eval`) as a table and bar charts per pipeline."""

from __future__ import annotations

from typing import Any

import streamlit as st

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


labels = {r.run_id: f"{r.created_at} · {r.domain} · {r.questions} questions · {r.status}" for r in runs}
picked = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key="scores_run")
run = next(r for r in runs if r.run_id == picked)
rows = [
    {
        "pipeline": p,
        "correct": m.get("correct"),
        "contains": m.get("contains"),
        "F1": m.get("f1"),
        "first token p50 (s)": _latency(m, "ttft_s"),
        "total p50 (s)": _latency(m, "total_s"),
        "own total p50 (s)": _latency(m, "own_total_s"),
        "cost (USD)": m.get("cost_usd_total"),
        "errors": m.get("errors"),
    }
    for p, m in run.metrics.items()
]
st.dataframe(rows, hide_index=True)
charts = st.columns(3)
for col, (title, key) in zip(
    charts, (("Accuracy (correct)", "correct"), ("Latency: total p50 (s)", "total p50 (s)"),
             ("Cost (USD)", "cost (USD)")), strict=True
):  # fmt: skip
    with col:
        st.caption(title)
        st.bar_chart([{"pipeline": r["pipeline"], key: r[key] or 0} for r in rows], x="pipeline", y=key,
                     horizontal=True, height=220)  # fmt: skip
