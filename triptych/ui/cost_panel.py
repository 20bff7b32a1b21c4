"""Scores page: a domain's cost card, its cumulative-cost chart with break-even points, and the stakeholder page.

The figures and the chart (inline SVG) are the ones of the page `triptych report` writes
(triptych/cost_sources.py, triptych/cost_view.py).
"""

from __future__ import annotations

import streamlit as st

from triptych import costs
from triptych.cost_sources import domain_costs
from triptych.cost_view import cost_chart_svg
from triptych.settings import Settings
from triptych.ui.widgets import escape_markdown


def cost_and_report(settings: Settings, domain: str) -> None:
    """The cost section of the Scores page for `domain`, and the button that downloads its stakeholder page."""
    st.subheader(f"Cost and break-even · {domain}")
    dc = domain_costs(settings, domain)
    if not dc.per_question:
        st.info(f"No answers of {domain} are measured yet: run an evaluation or ask on the Compare page.")
    else:
        for col, pq in zip(st.columns(len(dc.per_question)), dc.per_question.values(), strict=True):
            once = dc.one_off.get(pq.pipeline, [])
            once_text = " + ".join(costs.usd(o.usd) if o.usd is not None else "not recorded" for o in once) or "$0"
            col.metric(
                f"{pq.label}: per question",
                costs.usd(pq.usd) if pq.usd is not None else "not recorded",
                help=f"{pq.basis}; n={pq.n}",
                border=True,
            )
            col.caption(escape_markdown(f"one-off {once_text} · {pq.basis} · n={pq.n}"))
        for sentence in dc.sentences():
            st.markdown(f"**{escape_markdown(sentence)}**")
        if dc.lines:
            st.image(cost_chart_svg(dc), caption="Cumulative cost against questions asked; break-even points marked")
        rows = [
            {"pipeline": pq.label, "one-off": "; ".join(f"{o.what}: {o.detail}" for o in dc.one_off.get(pid, []))
             or "nothing to build", "per question": pq.basis, "answers (eval / history)":
             f"{pq.from_eval} / {pq.from_history}"}
            for pid, pq in dc.per_question.items()
        ]  # fmt: skip
        with st.expander("How each figure was measured"):
            st.dataframe(rows, hide_index=True)
            where = f"evaluation run {dc.eval_run} and " if dc.eval_run else ""
            st.caption(
                f"Per-question figures: means over the answers of {where}the comparison history made with the "
                f"endpoints configured now. Machine time at {costs.usd(dc.machine_usd_per_hour)} an hour "
                f"(TRIPTYCH_COST_MACHINE_USD_PER_HOUR) for {dc.machine_vcpus} vCPUs (TRIPTYCH_COST_MACHINE_VCPUS): "
                f"a local answer's CPU seconds at 1/{dc.machine_vcpus} of a machine second each, or its busy seconds "
                "at a whole one where its CPU time was not recorded; remote endpoints at their PRICE_IN/OUT_PER_1K. "
                f"Questions a day: a break-even's questions over the {dc.horizon_days} days the one-off costs are "
                "spread over (TRIPTYCH_COST_HORIZON_DAYS)."
            )
        for note in dc.notes:
            st.caption(escape_markdown(note))

    def page() -> str:
        from triptych.stakeholder import render_report

        return render_report(settings, domain)

    st.download_button(
        "Download the stakeholder report (HTML)",
        data=page,
        file_name=f"triptych-{domain}-report.html",
        mime="text/html",
        key="stakeholder_report",
        help="One self-contained page: methods compared, example answers, cost and break-even; prints to PDF.",
    )
