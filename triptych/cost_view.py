"""The cost card and the cumulative-cost chart as self-contained HTML (inline SVG), for the report and the app.

Every text that came from settings or run files is HTML-escaped.
"""

from __future__ import annotations

from html import escape

from triptych import costs
from triptych.cost_sources import DomainCosts
from triptych.evaluate.report import color

CHART_W, CHART_H = 640, 330
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 30, 74


def _num(questions: float) -> str:
    return f"{questions:,.0f}"


def cost_chart_svg(dc: DomainCosts) -> str:
    """Cumulative cost against questions asked, one line per pipeline, break-even points marked."""
    x_max = dc.axis_questions
    y_top = max((line.at(x_max) for line in dc.lines), default=0.0)
    y_max = costs.nice_ceil(y_top) if y_top > 0 else 1.0
    plot_w, plot_h = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM

    def px(q: float) -> float:
        return LEFT + plot_w * q / x_max

    def py(v: float) -> float:
        return TOP + plot_h * (1 - v / y_max)

    title = f"Cumulative cost of {dc.domain} against questions asked"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
        f'role="img" aria-label="{escape(title)}" class="cost-chart" style="max-width:100%;height:auto">'
        f'<text x="0" y="16" font-weight="bold" font-size="13">{escape(title)}</text>'
    ]
    for i in range(6):  # axes, grid and ticks
        q, v = x_max * i / 5, y_max * i / 5
        parts.append(
            f'<line x1="{px(q):.1f}" y1="{TOP}" x2="{px(q):.1f}" y2="{TOP + plot_h}" stroke="#eee"/>'
            f'<text x="{px(q):.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">{_num(q)}</text>'
            f'<line x1="{LEFT}" y1="{py(v):.1f}" x2="{LEFT + plot_w}" y2="{py(v):.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end">{costs.usd(v)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#444"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h + 34}" font-size="12" text-anchor="middle">'
        "questions asked</text>"
    )
    for i, line in enumerate(dc.lines):
        parts.append(
            f'<line x1="{px(0):.1f}" y1="{py(line.at(0)):.1f}" x2="{px(x_max):.1f}" y2="{py(line.at(x_max)):.1f}" '
            f'stroke="{color(line.pipeline, i)}" stroke-width="2.5" class="cost-line" '
            f'data-pipeline="{escape(line.pipeline)}">'
            f"<title>{escape(line.label)}: {costs.usd(line.one_off_usd)} once + "
            f"{costs.usd(line.per_question_usd)} a question</title></line>"
        )
    for be in dc.crossings:
        if be.questions > x_max:
            continue
        x, y = px(be.questions), py(be.usd)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#333" stroke-dasharray="4 3"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#fff" stroke="#111" stroke-width="2" class="break-even">'
            f"<title>{escape(be.cheaper_first.label)} = {escape(be.cheaper_after.label)} at about "
            f"{costs.about(be.questions)} questions "
            f"({costs.daily(be.questions, dc.horizon_days)})"
            "</title></circle>"
            f'<text x="{x + 6:.1f}" y="{y - 8:.1f}" font-size="11">≈{costs.about(be.questions)}</text>'
        )
    legend_y = TOP + plot_h + 50
    for i, line in enumerate(dc.lines):
        lx = LEFT + (i % 4) * 140
        ly = legend_y + 16 * (i // 4)
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color(line.pipeline, i)}"/>'
            f'<text x="{lx + 16}" y="{ly + 11}" font-size="12">{escape(line.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _sources_text(dc: DomainCosts, n_eval: int, n_history: int) -> str:
    where = []
    if n_eval:
        where.append(f"evaluation run {dc.eval_run} (n={n_eval})")
    if n_history:
        where.append(f"the comparison history (n={n_history})")
    return " and ".join(where) or "nothing measured"


def cost_card_html(dc: DomainCosts) -> str:
    """The card: per pipeline its one-off and per-question cost with how each was measured, the chart, the crossings."""
    if not dc.per_question:
        return (
            f"<p>No answers measured for {escape(dc.domain)} yet: run <code>triptych eval --domain "
            f"{escape(dc.domain)}</code> or ask questions on the Compare page.</p>"
        )
    rows = []
    for pid, pq in dc.per_question.items():
        offs = dc.one_off.get(pid, [])
        once = "; ".join(
            f"{escape(o.what)}: {costs.usd(o.usd) if o.usd is not None else 'not recorded'}"
            f"<br><span class=small>{escape(o.detail)}</span>"
            for o in offs
        )
        per_q = costs.usd(pq.usd) if pq.usd is not None else "not recorded"
        rows.append(
            f"<tr><th>{escape(pq.label)}</th><td>{once or 'none (nothing to build)'}</td>"
            f"<td class=num>{per_q}</td><td>{escape(pq.basis)}<br><span class=small>"
            f"{escape(_sources_text(dc, pq.from_eval, pq.from_history))}</span></td>"
            f"<td class=num>{_line_at(dc, pid, 1000)}</td></tr>"
        )
    sentences = dc.sentences()
    if not sentences and len(dc.lines) >= 2:
        sentences = ["The lines do not cross: the pipeline cheapest to set up is also the cheapest per question."]
    said = "".join(f"<li>{escape(s)}</li>" for s in sentences)
    notes = "".join(f"<li>{escape(n)}</li>" for n in dc.notes)
    return (
        "<table class=cost><tr><th>pipeline</th><th>one-off</th><th>per question</th><th>measured as</th>"
        f"<th>after 1,000 questions</th></tr>{''.join(rows)}</table>"
        + (f"<ul class=crossings>{said}</ul>" if said else "")
        + (cost_chart_svg(dc) if dc.lines else "")
        + (f"<ul class='small notes'>{notes}</ul>" if notes else "")
        + f"<p class=small>Prices: machine time {costs.usd(dc.machine_usd_per_hour)} an hour "
        f"(TRIPTYCH_COST_MACHINE_USD_PER_HOUR) for {dc.machine_vcpus} vCPUs (TRIPTYCH_COST_MACHINE_VCPUS): a local "
        f"answer's CPU seconds at 1/{dc.machine_vcpus} of a machine second each (its busy seconds at a whole one "
        "where CPU time was not recorded), index builds and LoRA runs by their wall time; remote endpoints at "
        "their TRIPTYCH_&lt;PIPELINE&gt;__PRICE_IN/OUT_PER_1K. Per-question figures are means over the answers "
        "named; timings measured on a shared machine vary from run to run. Questions a day: the break-even's "
        f"questions over the {dc.horizon_days} days the one-off costs are spread over (TRIPTYCH_COST_HORIZON_DAYS; "
        "an index or adapter is rebuilt about that often).</p>"
    )


def _line_at(dc: DomainCosts, pipeline: str, questions: float) -> str:
    line = next((ln for ln in dc.lines if ln.pipeline == pipeline), None)
    return costs.usd(line.at(questions)) if line else "–"
