"""One self-contained HTML page about a domain for a stakeholder who will not open the app.

The page is a list of independent sections. Each section is one function taking the settings and
the domain and returning its HTML, or None when there is nothing to show yet; the page then keeps
the section's heading with a line saying what would fill it. To add a section, write its function
and put it in SECTIONS. No scripts, styles or fonts from elsewhere: charts are inline SVG, and
every text from a document, a model or a file is HTML-escaped. Laid out to print on A4 (print CSS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from graphs.registry import PIPELINES
from graphs.result import PipelineResult
from triptych.evaluate import headline as hl
from triptych.evaluate.report import color
from triptych.passages import readable_source
from triptych.settings import PIPELINE_ENDPOINTS, Settings

SNIPPET_CHARS = 320
EXAMPLES = 3


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor id, heading, renderer, and what fills it when the renderer has nothing."""

    id: str
    title: str
    render: Callable[[Settings, str], str | None]
    missing: str  # `{domain}` is replaced by the domain


# --- method comparison ----------------------------------------------------------------------------


def _latest_run(settings: Settings, domain: str) -> Any:
    """The domain's newest evaluation run that can be read (LoadedRun), or None."""
    from triptych.evaluate.store import RunNotFoundError, list_runs, load_run

    for run in (r for r in list_runs(settings) if r.domain == domain):
        try:
            return load_run(settings, run.run_id)
        except (RunNotFoundError, OSError, ValueError):
            continue
    return None


def accuracy_chart_svg(rows: Sequence[tuple[str, str, float | None, list[float] | None]]) -> str:
    """Horizontal bars of accuracy (0-100 %) with their 95 % intervals as whiskers: (pipeline, label, rate, ci)."""
    bar_h, gap, label_w, width = 18, 10, 190, 640
    plot_w = width - label_w - 70
    height = 34 + len(rows) * (bar_h + gap) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        'aria-label="Correct answers with 95 % intervals" style="max-width:100%;height:auto">'
        '<text x="0" y="14" font-weight="bold" font-size="13">Correct answers, with 95 % intervals</text>'
    ]
    for tick in range(0, 101, 25):
        x = label_w + plot_w * tick / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{height - 18}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">{tick} %</text>'
        )
    y = 28
    for i, (pipeline, label, rate, ci) in enumerate(rows):
        parts.append(f'<text x="0" y="{y + bar_h - 5}" font-size="12">{escape(label)}</text>')
        if rate is not None:
            w = plot_w * rate
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color(pipeline, i)}"/>'
                f'<text x="{label_w + plot_w + 6}" y="{y + bar_h - 5}" font-size="11">{100 * rate:.0f} %</text>'
            )
        if ci:
            x0, x1, mid = label_w + plot_w * ci[0], label_w + plot_w * ci[1], y + bar_h / 2
            parts.append(
                f'<line x1="{x0:.1f}" y1="{mid}" x2="{x1:.1f}" y2="{mid}" stroke="#111" stroke-width="1.5"/>'
                f'<line x1="{x0:.1f}" y1="{y + 3}" x2="{x0:.1f}" y2="{y + bar_h - 3}" stroke="#111"/>'
                f'<line x1="{x1:.1f}" y1="{y + 3}" x2="{x1:.1f}" y2="{y + bar_h - 3}" stroke="#111"/>'
            )
        y += bar_h + gap
    parts.append("</svg>")
    return "".join(parts)


def method_comparison(settings: Settings, domain: str) -> str | None:
    """Accuracy on questions the adapter never saw, with Wilson intervals, and each pair's difference (latest run)."""
    run = _latest_run(settings, domain)
    if run is None:
        return None
    s = run.summary
    heads = {p: hl.headline(p, s["metrics"].get(p, {})) for p in s["pipelines"]}
    rows, chart = [], []
    for p, h in heads.items():
        label = PIPELINES[p].label if p in PIPELINES else p
        rate = h.metrics.get("correct")
        basis = "unseen in training" if h.basis == "unseen" else "all"
        seen = hl.seen_beside(h, "correct", lambda v: "–" if v is None else f"{100 * v:.0f} %")
        rows.append(
            f"<tr><th>{escape(label)}</th><td>{escape(basis)}</td><td class=num>{h.n if h.n is not None else '–'}</td>"
            f"<td class=num>{'–' if rate is None else f'{100 * rate:.1f} %'}</td>"
            f"<td class=num>{escape(hl.interval_text(h.metrics))}</td><td>{escape(seen)}</td></tr>"
        )
        chart.append((p, label, rate, h.metrics.get("correct_ci95")))
    pairs = s.get("comparisons")
    if pairs is None:
        diffs = f"<p class=small>Differences between pipelines: {hl.NOT_RECORDED} in this run.</p>"
    else:
        diffs = "<ul>" + "".join(f"<li>{escape(hl.comparison_text(c))}</li>" for c in pairs) + "</ul>"
    split = f", split {s['split']}" if s.get("split") else ""
    return (
        f"<p class=small>From evaluation run {escape(s['run_id'])} ({escape(s['status'])}, {s['questions']} "
        f"questions{escape(split)}, {escape(s['created_at'])}). A fine-tuned pipeline is scored on the questions its "
        "adapter was not trained on; its score on questions it saw in training is shown beside. The interval is "
        "Wilson's 95 % interval; a difference whose interval holds 0 is no clear difference.</p>"
        + accuracy_chart_svg(chart)
        + "<table><tr><th>method</th><th>questions</th><th>n</th><th>correct</th><th>95 % interval</th>"
        f"<th>seen in training</th></tr>{''.join(rows)}</table>" + "<h3>Differences between methods</h3>" + diffs
    )


# --- example questions ----------------------------------------------------------------------------


def _answer_html(r: PipelineResult, verdict: bool | None = None) -> str:
    mark = {True: " <span class=ok>✓ correct</span>", False: " <span class=bad>✗ wrong</span>"}.get(verdict, "")
    parts = [f"<div class=col><h4>{escape(r.label)}{mark}</h4><p class=small>{escape(r.model or '')}</p>"]
    if r.error:
        parts.append(f"<p class=bad>Error: {escape(r.error)}</p>")
    elif not r.answer and r.notice:
        parts.append(f"<p class=small><i>{escape(r.notice)}</i></p>")
    else:
        parts.append(f"<p class=answer>{escape(r.answer)}</p>")
    if r.sources:
        items = []
        for s in r.sources:
            text = " ".join(readable_source(s.text).split())  # as the app's source cards: no markdown marks
            text = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "…"
            page = f", page {s.page}" if s.page else ""
            items.append(f"<li><b>[{s.n}] {escape(s.title or s.source)}{escape(page)}</b><br>{escape(text)}</li>")
        parts.append(f"<details open><summary>Sources ({len(r.sources)})</summary><ol class=src>{''.join(items)}</ol>")
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def _from_history(settings: Settings, domain: str) -> list[str]:
    from triptych.history import list_history

    out, asked = [], set()
    for rec in list_history(settings):
        if rec.domain != domain or len(rec.results) < 2 or rec.question in asked:
            continue
        asked.add(rec.question)
        cols = "".join(_answer_html(r) for r in rec.results.values())
        out.append(
            f"<div class=example><h3>{escape(rec.question)}</h3><p class=small>Asked on the Compare page, "
            f"{escape(rec.created_at)} (history {escape(rec.id)}).</p><div class=cols>{cols}</div></div>"
        )
        if len(out) == EXAMPLES:
            break
    return out


def _from_eval(settings: Settings, domain: str, wanted: int) -> list[str]:
    run = _latest_run(settings, domain)
    if run is None or wanted <= 0:
        return []
    by_question: dict[str, list[dict[str, Any]]] = {}
    for a in run.answers:
        by_question.setdefault(a["question_id"], []).append(a)
    order = run.manifest.get("question_ids") or list(by_question)

    def telling(qid: str) -> bool:  # some pipelines right and some wrong: the contrast a stakeholder should see
        verdicts = {bool(a["scores"].get("correct")) for a in by_question.get(qid, [])}
        return len(verdicts) == 2

    chosen = [q for q in order if q in by_question and telling(q)]
    chosen += [q for q in order if q in by_question and q not in chosen]
    out = []
    for qid in chosen[:wanted]:
        answers = sorted(by_question[qid], key=lambda a: list(PIPELINES).index(a["pipeline"]) if a["pipeline"] in
                         PIPELINES else 99)  # fmt: skip
        first = answers[0]
        gold = " | ".join(first.get("gold") or []) if first.get("answerable", True) else "(unanswerable: decline)"
        cols = "".join(
            _answer_html(
                PipelineResult.from_dict(
                    a | {"label": PIPELINES[a["pipeline"]].label if a["pipeline"] in PIPELINES else a["pipeline"]}
                ),
                None if a.get("status") == "unavailable" else bool(a["scores"].get("correct")),
            )
            for a in answers
        )
        out.append(
            f"<div class=example><h3>{escape(first['question'])}</h3><p class=small>Evaluation question "
            f"{escape(qid)} of run {escape(run.summary['run_id'])}; gold answer: {escape(gold)}</p>"
            f"<div class=cols>{cols}</div></div>"
        )
    return out


def example_questions(settings: Settings, domain: str) -> str | None:
    """Three questions with every method's answer and sources: the history's newest, then the latest run's."""
    found = _from_history(settings, domain)
    found += _from_eval(settings, domain, EXAMPLES - len(found))
    return "".join(found) or None


# --- cost -----------------------------------------------------------------------------------------


def cost_section(settings: Settings, domain: str) -> str | None:
    """The cost card and cumulative-cost chart with the break-even points (triptych/cost_view.py)."""
    from triptych.cost_sources import domain_costs
    from triptych.cost_view import cost_card_html

    dc = domain_costs(settings, domain)
    return cost_card_html(dc) if dc.per_question else None


# --- places for the other demo moments of issue 16 -----------------------------------------------


def change_a_fact(settings: Settings, domain: str) -> str | None:
    """The domain's latest change-a-fact race: the changed sentence, each column's answer before and after,
    how soon RAG stated the new fact, and what retraining the fine-tuned model would take (measured)."""
    from triptych import live_change

    races = live_change.read_races(settings, domain)
    if not races:
        return None
    race = races[-1]

    def said(side: dict[str, Any]) -> str:
        if side.get("states_new"):
            return "the new fact"
        if side.get("states_old"):
            return "the old fact"
        return "neither" if side.get("answer") else escape(str(side.get("error") or "no answer"))

    rows = "".join(
        f"<tr><td>{escape(str(col.get('label', pid)))}</td>"
        f"<td>{escape(str(col['before'].get('answer') or ''))}</td><td>{escape(str(col['after'].get('answer') or ''))}"
        f"</td><td>{said(col['after'])}</td></tr>"
        for pid, col in (race.get("columns") or {}).items()
    )
    rag_s = race.get("rag_new_fact_s")
    rag_line = (
        f"RAG stated the new fact {rag_s:.1f} s after the change (re-indexing one document: "
        f"{race.get('reindex_s') or 0:.1f} s)."
        if rag_s is not None
        else "RAG did not state the new fact in this race."
    )
    retrain = race.get("retrain")
    if retrain and retrain.get("s_per_step") and retrain.get("steps"):
        cost = f", about ${retrain['cost_usd']:.4f}" if retrain.get("cost_usd") else ""
        retrain_line = (
            f"The fine-tuned model keeps what it was trained on until it is retrained: its last run took "
            f"{retrain['s_per_step']:.1f} s a step × {retrain['steps']} steps on this machine{cost}."
        )
    elif retrain and retrain.get("trained_tokens"):
        retrain_line = f"Retraining the hosted fine-tune means training {retrain['trained_tokens']} tokens again."
    else:
        retrain_line = "The domain had no fine-tuned adapter when this race ran."
    return (
        f"<p>Question: <b>{escape(str(race.get('question', '')))}</b> ({escape(str(race.get('at', '')))})</p>"
        f"<p>The document <i>{escape(str(race.get('doc_id', '')))}</i> changed from "
        f"“{escape(str(race.get('old_text', '')))}” to “{escape(str(race.get('new_text', '')))}”.</p>"
        f"<p>{escape(rag_line)} {escape(retrain_line)}</p>"
        "<table><tr><th>method</th><th>before the change</th><th>after the change</th><th>after, it said</th></tr>"
        f"{rows}</table>"
    )


def blind_vote(settings: Settings, domain: str) -> str | None:
    """The domain's blind-vote leaderboard: win rate with its Wilson 95 % interval and the number of votes."""
    from triptych import votes

    rows = votes.leaderboard(settings, domain)
    if not rows:
        return None
    total = votes.vote_count(settings, domain)
    cells = "".join(
        f"<tr><td>{escape(r.label)}</td><td>{r.wins}</td><td>{r.votes}</td><td>{r.win_rate * 100:.0f} %</td>"
        f"<td>{r.ci95[0] * 100:.0f}–{r.ci95[1] * 100:.0f} %</td></tr>"
        for r in rows
    )
    return (
        f"<p>Viewers saw the answers shuffled and labelled A, B, C, without method names or sources, and voted "
        f"for the best one ({total} vote{'s' if total != 1 else ''}). A method's win rate counts the votes whose "
        "ballot held it.</p><table><tr><th>method</th><th>wins</th><th>votes</th><th>win rate</th>"
        f"<th>95 % interval</th></tr>{cells}</table>"
    )


SECTIONS: list[Section] = [
    Section(
        "methods",
        "Which method answers best",
        method_comparison,
        "No evaluation run of {domain} yet: run `triptych eval --domain {domain}` (or Scores page, Run an evaluation).",
    ),
    Section(
        "examples",
        "Three example questions",
        example_questions,
        "No question about {domain} has been asked yet: ask on the Compare page, or run an evaluation.",
    ),
    Section(
        "change-a-fact",
        "Change a fact",
        change_a_fact,
        "No change-a-fact race of {domain} yet: on Compare, follow 'Change a fact' and run the scripted change.",
    ),
    Section(
        "cost",
        "Cost and break-even",
        cost_section,
        "No answers of {domain} are measured yet: run an evaluation or ask on the Compare page.",
    ),
    Section(
        "blind-vote",
        "Blind vote",
        blind_vote,
        "No blind votes on {domain} yet: ask on Compare, then 'Vote on it blind' and share the link.",
    ),
]


# --- the page -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;color:#222;max-width:1100px;
padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2rem}
table{border-collapse:collapse;margin:0.5rem 0 1rem;width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px;overflow-wrap:break-word}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.small{color:#666;font-size:12px}.ok{color:#1a7f37;font-size:12px}.bad{color:#b00020;font-size:12px}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:10px}
.col{border:1px solid #ddd;border-radius:6px;padding:8px;min-width:0;overflow-wrap:anywhere}
.col h4{margin:0 0 2px}.answer{white-space:pre-wrap}
.src{font-size:12px;padding-left:1.2rem;margin:4px 0}.src li{margin-bottom:4px}
.example{margin-bottom:1.2rem}.empty p{color:#666;font-style:italic}
nav ol{columns:2;font-size:14px}svg{display:block;margin:0.5rem 0}
@page{size:A4;margin:14mm}
@media print{
 body{margin:0;max-width:none;padding:0;font-size:11pt}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 h2,h3,h4{break-after:avoid}
 table,tr,svg,.col,li{break-inside:avoid}
 .cols{grid-template-columns:repeat(3,minmax(0,1fr))}
 details>summary{list-style:none}
 a{color:inherit;text-decoration:none}
}
"""


def _models(settings: Settings) -> str:
    return ", ".join(f"{p}: {settings.endpoint(p).model}" for p in PIPELINE_ENDPOINTS)


def render_report(settings: Settings, domain: str, sections: Sequence[Section] = SECTIONS) -> str:
    """The whole page for `domain`: a heading, contents, then each section (or what would fill it)."""
    now = datetime.now(UTC).isoformat(timespec="minutes").replace("+00:00", " UTC")
    body = []
    for section in sections:
        html = section.render(settings, domain)
        empty = html is None
        if empty:
            html = f"<p>{escape(section.missing.format(domain=domain))}</p>"
        body.append(
            f'<section id="{escape(section.id)}" class="{"empty" if empty else "filled"}">'
            f"<h2>{escape(section.title)}</h2>{html}</section>"
        )
    toc = "".join(f'<li><a href="#{escape(s.id)}">{escape(s.title)}</a></li>' for s in sections)
    title = f"Triptych: prompt, RAG and fine-tuning on {domain}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
        f"<h1>{escape(title)}</h1><p class=small>Generated {escape(now)} from this machine's stored runs. "
        f"Models: {escape(_models(settings))}.</p><nav><ol>{toc}</ol></nav>{''.join(body)}</body></html>"
    )
