"""A self-contained HTML report of one or more evaluation runs, and the differences between two runs.

The report has no external scripts, styles or fonts: charts are inline SVG. Every text that came
from a document, a model or a QA file is HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from triptych.evaluate.headline import NOT_RECORDED, causes, counts_text, headline, interval_text, seen_beside
from triptych.evaluate.store import LoadedRun

COLORS = {"prompt": "#4c78a8", "rag": "#59a14f", "finetuned": "#e15759", "finetuned_rag": "#b07aa1"}
FALLBACK_COLORS = ("#f28e2b", "#76b7b2", "#edc948", "#9c755f")

# (label, metrics key, kind): kind "rate" is shown as a percentage, "s" as seconds, "usd" as dollars.
TABLE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("correct (any match / refusal)", "correct", "rate"),
    ("contains", "contains", "rate"),
    ("exact match", "exact_match", "rate"),
    ("token F1", "f1", "rate"),
    ("numeric match", "numeric", "rate"),
    ("yes/no", "yes_no", "rate"),
    ("refusal accuracy (unanswerable)", "refusal_accuracy", "rate"),
    ("false refusals (answerable)", "false_refusal_rate", "rate"),
    ("retrieval hit@1", "hit@1", "rate"),
    ("retrieval hit@5", "hit@5", "rate"),
    ("gold doc among sources", "source_hit", "rate"),
    ("cites a source", "citation_rate", "rate"),
    ("cited source holds answer", "cited_holds_answer", "rate"),
    ("judge score", "judge.score", "rate"),
    ("ttft median", "ttft_s.median", "s"),
    ("ttft p95", "ttft_s.p95", "s"),
    ("total median", "total_s.median", "s"),
    ("total p95", "total_s.p95", "s"),
    ("queued for the local model, median", "queued_s.median", "s"),
    ("own total median (without queue)", "own_total_s.median", "s"),
    ("completion tokens (mean)", "completion_tokens_mean", "n"),
    ("cost per answer", "cost_usd_per_answer", "usd"),
    ("answered / errors / unavailable", "_counts", "text"),
    ("answers cut short (token limit or stopped)", "cut_short", "n"),
)


def metric(metrics: dict[str, Any], key: str) -> Any:
    """A metric by dotted key (`ttft_s.median`), None where absent."""
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def fmt(value: Any, kind: str) -> str:
    """A metric for display (already safe: numbers only)."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{100 * value:.1f} %"
    if kind == "s":
        return f"{value:.2f} s"
    if kind == "usd":
        return f"${value:.5f}"
    if kind == "n":
        return f"{value:.1f}"
    return escape(str(value))


def color(pipeline: str, i: int) -> str:
    """A stable colour per pipeline."""
    return COLORS.get(pipeline, FALLBACK_COLORS[i % len(FALLBACK_COLORS)])


def bar_chart(title: str, groups: Sequence[str], series: dict[str, list[float | None]], unit: str) -> str:
    """Grouped horizontal bars as inline SVG: one group per metric, one bar per pipeline."""
    bar_h, gap, label_w, width = 14, 10, 170, 620
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0.0) or 1.0
    if unit == "%":
        top = max(top, 1.0)
    rows = len(groups) * (len(series) * bar_h + gap)
    height = rows + 40 + 18 * ((len(series) + 3) // 4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="0" y="14" font-weight="bold" font-size="13">{escape(title)}</text>'
    ]
    y = 26
    for gi, group in enumerate(groups):
        parts.append(f'<text x="0" y="{y + len(series) * bar_h / 2 + 4}" font-size="12">{escape(group)}</text>')
        for si, (pipeline, vals) in enumerate(series.items()):
            v = vals[gi]
            w = 0 if v is None else max(1.0, (width - label_w - 80) * v / top)
            label = "–" if v is None else {"%": f"{100 * v:.0f} %", "$": f"${v:.3g}"}.get(unit, f"{v:.3g} {unit}")
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color(pipeline, si)}">'
                f"<title>{escape(pipeline)}: {escape(label)}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" font-size="11">{escape(label)}</text>'
            )
            y += bar_h
        y += gap
    parts += _legend([(p, color(p, si)) for si, p in enumerate(series)], y + 8)
    parts.append("</svg>")
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str]], top: float) -> list[str]:
    """SVG legend entries (a colour square and its name), four to a row, from `top` down."""
    parts = []
    for i, (name, fill) in enumerate(items):
        lx, ly = (i % 4) * 150, top + 18 * (i // 4)
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{fill}"/>'
            f'<text x="{lx + 16}" y="{ly + 11}" font-size="12">{escape(name)}</text>'
        )
    return parts


def worst_misses(answers: Sequence[dict[str, Any]], pipeline: str, n: int = 5) -> list[dict[str, Any]]:
    """The pipeline's worst answers: wrong ones first, then by lowest F1 (errors before low scores)."""
    rows = [a for a in answers if a["pipeline"] == pipeline and a["status"] != "unavailable"]
    wrong = [a for a in rows if not a["scores"].get("correct")]
    return sorted(wrong, key=lambda a: (a["status"] != "error", a["scores"].get("f1") or 0.0, a["question_id"]))[:n]


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top;font-size:13px}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
details{margin:0.5rem 0}pre{white-space:pre-wrap;font-size:12px;background:#f7f7f7;padding:8px}
.miss td{max-width:360px}.small{color:#666;font-size:12px}
"""


def _metrics_table(summary: dict[str, Any]) -> str:
    """Metrics per pipeline; a fine-tuned pipeline's cells are on questions unseen in training, seen beside."""
    pipelines = summary["pipelines"]
    heads = {p: headline(p, summary["metrics"].get(p, {})) for p in pipelines}
    head = "".join(f"<th>{escape(p)}</th>" for p in pipelines)
    counts = "".join(f"<td>{escape(counts_text(heads[p]))}</td>" for p in pipelines)
    body = [f"<tr><th>answers scored</th>{counts}</tr>"]
    for label, key, kind in TABLE_ROWS:
        cells = []
        for p in pipelines:
            h = heads[p]
            if key == "_counts":
                m = summary["metrics"].get(p, {})
                value = f"{m.get('answered', 0)} / {m.get('errors', 0)} / {m.get('unavailable', 0)}"
                cells.append(f"<td class=num>{escape(value)}</td>")
                continue
            shown = fmt(metric(h.metrics, key), kind)
            beside = seen_beside(h, key, lambda v, k=kind: fmt(v, k)) if shown != "–" else ""
            beside = f"<br><span class=small>{beside}</span>" if beside else ""
            cells.append(f"<td class=num>{shown}{beside}</td>")
        if any(c != "<td class=num>–</td>" for c in cells):
            body.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
        if key == "correct":
            ci = "".join(f"<td class=num>{escape(interval_text(heads[p].metrics))}</td>" for p in pipelines)
            body.append(f"<tr><th>correct, 95 % interval (Wilson)</th>{ci}</tr>")
    note = ""
    if any(h.basis == "unseen" or h.split_missing for h in heads.values()):
        note = (
            "<p class=small>Fine-tuned pipelines: figures on questions their adapter was not trained on; the "
            "figure on questions seen in training (the question or a paraphrase in its training set) beside.</p>"
        )
    return f"{note}<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def _comparisons(summary: dict[str, Any]) -> str:
    """Each pair of pipelines: accuracy difference, its paired bootstrap interval, McNemar's p, the verdict."""
    pairs = summary.get("comparisons")
    if pairs is None:
        return f"<p>Differences between pipelines: {NOT_RECORDED}.</p>"
    if not pairs:
        return ""
    rows = []
    for c in pairs:
        ci = c.get("ci95")
        cells = [
            f"{escape(c['a'])} vs {escape(c['b'])}",
            "unseen in training" if c.get("questions") == "unseen" else "all",
            str(c["n"]),
            fmt(c.get("accuracy_a"), "rate") + " vs " + fmt(c.get("accuracy_b"), "rate"),
            "–" if c.get("difference") is None else f"{100 * c['difference']:+.1f} points",
            "–" if not ci else f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}",
            f"{c['mcnemar_p']:.3g}",
            escape(c["verdict"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (
        "<h3>Differences between pipelines</h3><p class=small>Paired on the same questions (a question a "
        "fine-tuned pipeline was trained on is left out of its pairs); 95 % interval by paired bootstrap "
        f"({pairs[0]['bootstrap']['resamples']} resamples, seed {pairs[0]['bootstrap']['seed']}); McNemar's "
        "exact test on the questions only one of the two got right.</p><table><tr><th>pair</th><th>questions</th>"
        "<th>n</th><th>correct</th><th>difference</th><th>95 % interval</th><th>McNemar p</th><th>reading</th>"
        f"</tr>{''.join(rows)}</table>"
    )


CAUSE_COLORS = {
    "retrieval miss": "#e15759", "read miss": "#f28e2b", "refused": "#bab0ac", "unseen fact": "#b07aa1",
    "seen but wrong": "#ff9da7", "wrong": "#9c755f", "should have refused": "#edc948", "error": "#555555",
    "not recorded": "#dddddd",
}  # fmt: skip


def stacked_causes_chart(title: str, rows: dict[str, dict[str, int]]) -> str:
    """Horizontal stacked bars as inline SVG: one bar per row label, one segment per miss cause (counts)."""
    bar_h, gap, label_w, width = 18, 8, 170, 620
    causes_seen = [c for c in CAUSE_COLORS if any(r.get(c) for r in rows.values())]
    top = max((sum(r.values()) for r in rows.values()), default=0) or 1
    legend_rows = (len(causes_seen) + 3) // 4
    height = 26 + len(rows) * (bar_h + gap) + 18 * legend_rows + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="0" y="14" font-weight="bold" font-size="13">{escape(title)}</text>'
    ]
    y = 26
    for label, counts in rows.items():
        parts.append(f'<text x="0" y="{y + bar_h - 5}" font-size="12">{escape(label)}</text>')
        x = float(label_w)
        for cause in causes_seen:
            n = counts.get(cause, 0)
            if not n:
                continue
            w = (width - label_w - 50) * n / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{CAUSE_COLORS[cause]}">'
                f"<title>{escape(label)}: {escape(cause)} {n}</title></rect>"
            )
            x += w
        total = sum(counts.values())
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h - 5}" font-size="11">{total}</text>')
        y += bar_h + gap
    parts += _legend([(c, CAUSE_COLORS[c]) for c in causes_seen], y + 4)
    parts.append("</svg>")
    return "".join(parts)


def _miss_causes(summary: dict[str, Any]) -> str:
    """Why answers missed, per pipeline of the run (its domain), as a stacked bar chart and counts."""
    rows = {p: causes(summary["metrics"].get(p, {})) for p in summary["pipelines"]}
    if all(r is None for r in rows.values()):
        return f"<h3>Why answers missed</h3><p>{NOT_RECORDED}.</p>"
    recorded = {f"{summary['domain']} · {p}": r for p, r in rows.items() if r is not None}
    missing = [p for p, r in rows.items() if r is None]
    note = f"<p class=small>{escape(', '.join(missing))}: {NOT_RECORDED}.</p>" if missing else ""
    return (
        "<h3>Why answers missed</h3><p class=small>One cause per wrong answer. Retrieval pipelines: retrieval "
        "miss (no chunk given to the model holds a gold answer), read miss (one did, the answer is still wrong), "
        "refused. Fine-tuned: unseen fact (not in its training set) or seen but wrong. Prompt: wrong or refused. "
        "Any pipeline: should have refused (an unanswerable question was answered), error.</p>"
        + stacked_causes_chart("Wrong answers by cause", recorded)
        + note
    )


def _charts(summary: dict[str, Any]) -> str:
    pipelines = summary["pipelines"]
    m = summary["metrics"]

    def series(keys: Sequence[str]) -> dict[str, list[float | None]]:
        return {p: [metric(m.get(p, {}), k) for k in keys] for p in pipelines}

    accuracy = ["correct", "contains", "f1", "hit@5"]
    latency = ["ttft_s.median", "ttft_s.p95", "total_s.median", "total_s.p95"]
    return (
        bar_chart("Accuracy", ["correct", "contains", "token F1", "retrieval hit@5"], series(accuracy), "%")
        + bar_chart("Latency (seconds)", ["ttft median", "ttft p95", "total median", "total p95"], series(latency), "s")
        + bar_chart("Cost per answer (USD)", ["cost / answer"], series(["cost_usd_per_answer"]), "$")
    )


def _misses(run: LoadedRun, n: int) -> str:
    out = []
    for pipeline in run.summary["pipelines"]:
        misses = worst_misses(run.answers, pipeline, n)
        if not misses:
            continue
        rows = []
        for a in misses:
            gold = " | ".join(a["gold"]) if a["answerable"] else "(unanswerable: should decline)"
            got = a["answer"] if a["status"] == "ok" else f"error: {a.get('error') or ''}"
            sources = ", ".join(f"[{s['n']}] {s['doc_id']}" for s in a.get("sources", []))
            f1 = a["scores"].get("f1")
            rows.append(
                f"<tr><td>{escape(a['question_id'])}</td><td>{escape(a['question'])}</td><td>{escape(gold)}</td>"
                f"<td>{escape(got)}</td><td class=num>{fmt(f1, 'rate')}</td><td>{escape(sources)}</td></tr>"
            )
        out.append(
            f"<h4>{escape(pipeline)}</h4><table class=miss><tr><th>id</th><th>question</th><th>gold</th>"
            f"<th>answer</th><th>F1</th><th>sources</th></tr>{''.join(rows)}</table>"
        )
    return "".join(out) or "<p>No misses.</p>"


def render_html(runs: Sequence[LoadedRun], misses_per_pipeline: int = 5) -> str:
    """The report: per domain, each run's metrics table, charts, worst misses and settings snapshot."""
    by_domain: dict[str, list[LoadedRun]] = {}
    for run in runs:
        by_domain.setdefault(run.summary["domain"], []).append(run)
    sections = []
    for domain, domain_runs in sorted(by_domain.items()):
        parts = [f"<h2>Domain: {escape(domain)}</h2>"]
        for run in domain_runs:
            s = run.summary
            split = f", split {s['split']}" if s.get("split") else ""
            source = f" from {s['qa_file']}" if s.get("qa_file") else ""
            parts.append(
                f"<h3>Run {escape(s['run_id'])}</h3><p class=small>{escape(s['status'])}: {s['answered']} answers to "
                f"{s['questions']} questions{escape(source + split)}; "
                f"{escape(s['created_at'])} to {escape(str(s.get('finished_at') or ''))}; judge: "
                f"{escape(str(s.get('judge') or 'none'))}; setup: {escape(setup_label(s))}</p>"
                + _metrics_table(s)
                + _charts(s)
                + _comparisons(s)
                + _miss_causes(s)
                + f"<h3>Worst misses per pipeline</h3>{_misses(run, misses_per_pipeline)}"
                + "<details><summary>Settings snapshot (no keys)</summary><pre>"
                + escape(_pretty(s.get("settings", {})))
                + "</pre></details>"
            )
        sections.append("".join(parts))
    title = "Triptych evaluation: " + ", ".join(escape(r.summary["run_id"]) for r in runs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
        "<p class=small>correct = exact match, contains, numeric or yes/no match (answerable questions) or a "
        "refusal (unanswerable ones); errors count as wrong. Rates over the questions where a metric "
        "applies.</p>" + "".join(sections) + "</body></html>"
    )


def setup_label(summary: dict[str, Any]) -> str:
    """'name (hash)' of the setup a run answered under; runs from before setups say so."""
    setup = summary.get("setup") or {}
    return f"{setup['name']} ({setup['hash']})" if setup.get("name") else "not recorded"


def _pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True)


# --- comparing two runs ---------------------------------------------------------------------------

COMPARED = ("correct", "contains", "exact_match", "f1", "numeric", "refusal_accuracy", "hit@5",
            "cited_holds_answer", "ttft_s.median", "total_s.median", "cost_usd_per_answer")  # fmt: skip


def _deltas(ma: dict[str, Any], mb: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    out = {}
    for key in COMPARED:
        va, vb = metric(ma, key), metric(mb, key)
        change = round(vb - va, 4) if isinstance(va, int | float) and isinstance(vb, int | float) else None
        out[key] = {"a": va, "b": vb, "change": change}
    return out


def compare_runs(a: LoadedRun, b: LoadedRun) -> dict[str, Any]:
    """Per pipeline, the change in each metric (b - a), and the questions whose correctness changed.

    A fine-tuned pipeline is compared on questions unseen in training when both runs recorded the split
    (`basis`), with the seen figures in `seen`; otherwise on all answers, its `seen` "not recorded".
    """
    pipelines = [p for p in a.summary["pipelines"] if p in b.summary["pipelines"]]
    deltas: dict[str, dict[str, dict[str, float | None]]] = {}
    basis: dict[str, str] = {}
    seen: dict[str, Any] = {}
    for p in pipelines:
        ha, hb = headline(p, a.summary["metrics"].get(p, {})), headline(p, b.summary["metrics"].get(p, {}))
        both_split = ha.basis == hb.basis == "unseen"
        basis[p] = "unseen" if both_split else "all"
        ma, mb = (ha.metrics, hb.metrics) if both_split else (a.summary["metrics"].get(p, {}),
                                                                b.summary["metrics"].get(p, {}))  # fmt: skip
        deltas[p] = _deltas(ma, mb)
        if both_split:
            seen[p] = {"n": {"a": ha.seen_n, "b": hb.seen_n}, **_deltas(ha.seen or {}, hb.seen or {})}
        elif ha.split_missing or hb.split_missing or ha.basis != hb.basis:
            seen[p] = NOT_RECORDED
    index_a = {(r["question_id"], r["pipeline"]): r for r in a.answers}
    changed = []
    same_questions = 0
    for r in b.answers:
        key = (r["question_id"], r["pipeline"])
        if r["pipeline"] not in pipelines or key not in index_a:
            continue
        same_questions += 1
        old = index_a[key]
        ca, cb = old["scores"].get("correct"), r["scores"].get("correct")
        fa, fb = old["scores"].get("f1"), r["scores"].get("f1")
        if ca != cb or (fa is not None and fb is not None and abs(fb - fa) >= 0.25):
            changed.append(
                {
                    "question_id": r["question_id"],
                    "pipeline": r["pipeline"],
                    "question": r["question"],
                    "correct": {"a": ca, "b": cb},
                    "f1": {"a": fa, "b": fb},
                    "answer": {
                        "a": old["answer"] if old["status"] == "ok" else old.get("error"),
                        "b": r["answer"] if r["status"] == "ok" else r.get("error"),
                    },
                }  # fmt: skip
            )
    changed.sort(key=lambda c: (c["pipeline"], c["question_id"]))
    return {
        "run_a": a.summary["run_id"],
        "run_b": b.summary["run_id"],
        "pipelines": pipelines,
        "shared_answers": same_questions,
        # per pipeline: "unseen" when both runs split a fine-tuned pipeline's answers by training, else "all"
        "basis": basis,
        "metrics": deltas,
        # fine-tuned pipelines: the same deltas on questions seen in training, or "not recorded"
        "seen": seen,
        "fixed": sum(1 for c in changed if c["correct"]["b"] and not c["correct"]["a"]),
        "broken": sum(1 for c in changed if c["correct"]["a"] and not c["correct"]["b"]),
        "changed": changed,
    }
