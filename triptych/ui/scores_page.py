"""Scores page: start an evaluation, and see stored runs as a table, charts, pairwise differences and miss causes.

A fine-tuned pipeline is headlined by its score on questions its adapter was not trained on, with the
seen figure beside it; runs stored before these figures were kept say "not recorded".
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from graphs.registry import PIPELINES, default_pipelines
from triptych.evaluate import headline as hl
from triptych.evaluate.report import CAUSE_COLORS
from triptych.evaluate.store import evals_dir, list_runs
from triptych.ingest import known_domains
from triptych.settings import ConfigError, Settings
from triptych.ui import resources
from triptych.ui.cost_panel import cost_and_report
from triptych.ui.eval_jobs import app_eval_jobs
from triptych.ui.votes_view import show_leaderboards
from triptych.ui.widgets import escape_markdown

settings = resources.page_start("Scores")
runs = list_runs(settings)
jobs = app_eval_jobs()


def _questions(settings: Settings, domain: str, source: str, upload: Any, limit: int) -> tuple[list, str, str | None]:
    """The records to ask, the QA file's label and the split; ValueError saying what is missing."""
    from triptych.qa import load_qa

    if source == "demo":
        path, split = settings.corpora_dir / domain / "qa.jsonl", "test"
        if not path.is_file():
            raise ValueError(f"{domain} has no demo questions ({path}): pick a QA file instead")
    else:
        if upload is None:
            raise ValueError("upload a QA file (.jsonl, one question a line, as ../shared/eval's qa_dev.jsonl)")
        path, split = evals_dir(settings) / "qa-uploads" / upload.name, None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(upload.getvalue())
    records = load_qa(path, split)  # QAFormatError is a ValueError naming file and line
    records = records[:limit] if limit else records
    if not records:
        raise ValueError(f"no questions in {path.name}" + (f" for split {split}" if split else ""))
    return records, str(path.resolve()), split


def _start(domain: str, source: str, upload: Any, pipelines: list[str], limit: int) -> None:
    """Check what the evaluation needs, then start it in the background."""
    from triptych.evaluate.judge import Judge
    from triptych.evaluate.runner import Evaluation
    from triptych.index import IndexNotFoundError, IndexStoreError, VariantNotBuiltError, open_index

    records, qa_file, split = _questions(settings, domain, source, upload, limit)
    if any(PIPELINES[p].uses_retrieval for p in pipelines):
        try:
            open_index(settings, domain)
        except VariantNotBuiltError as exc:  # the domain has other chunkings/models: the message names the build
            raise ValueError(str(exc)) from None
        except (IndexNotFoundError, IndexStoreError):
            raise ValueError(f"{domain} has no index yet: add its documents on the Documents page first") from None
    settings.check_keys(tuple(dict.fromkeys(PIPELINES[p].endpoint for p in pipelines)))
    local = any(settings.endpoint(PIPELINES[p].endpoint).is_local for p in pipelines)
    evaluation = Evaluation(resources.comparison(), judge=Judge.from_settings(settings), concurrency=1 if local else 4)
    jobs.start(evaluation, domain, records, pipelines, qa_file=qa_file, split=split)


with st.expander("Run an evaluation", expanded=not runs):
    domains = known_domains(settings)
    ev_domain = st.selectbox("Domain", domains or [None], key="ev_domain")
    sources = {"demo": "the domain's demo test split", "file": "a QA file"}
    source = st.radio("Questions", list(sources), key="ev_source", horizontal=True, format_func=sources.__getitem__)
    upload = st.file_uploader("QA file (.jsonl)", type=["jsonl"], key="ev_qa") if source == "file" else None
    defaults = default_pipelines(settings, ev_domain)  # the hybrid too, once the domain has a with-passages adapter
    chosen = st.multiselect("Pipelines", list(PIPELINES), default=defaults, key="ev_pipelines")
    limit = int(st.number_input("Only the first N questions (0: all)", min_value=0, value=0, key="ev_limit"))
    job = jobs.get(ev_domain) if ev_domain else None
    if st.button("Start evaluation", key="ev_start", type="primary",
                 disabled=not ev_domain or not chosen or bool(job and job.running)):  # fmt: skip
        try:
            _start(str(ev_domain), source, upload, list(chosen), limit)
        except (ValueError, ConfigError) as exc:
            st.error(escape_markdown(str(exc)))

    @st.fragment(run_every=1.0)
    def show_evaluation() -> None:
        """Poll the domain's evaluation every second while it runs."""
        job = jobs.get(ev_domain) if ev_domain else None
        if job is None:
            return
        where = f" · run {job.run_id}" if job.run_id else ""
        st.progress(job.done / job.total if job.total else 0.0,
                    text=f"{job.status}: {job.done}/{job.total} questions{where}")  # fmt: skip
        if job.last:
            st.caption(escape_markdown(job.last))
        if job.error:
            st.error(f"Evaluation failed: {escape_markdown(job.error)}")
        elif job.status == "cancelled":
            st.info("Cancelled: what finished is kept; start the same evaluation again to continue it.")
        elif job.summary is not None:
            st.success(f"Run {job.run_id} is {job.status}: reload the page to pick it below.")
        if job.running and st.button("Cancel", key="ev_cancel"):
            job.cancel.set()
            st.toast("Cancelling the questions in flight…")

    show_evaluation()

show_leaderboards(settings)  # blind votes, beside the gold-answer scores below
if not runs:
    st.info("No evaluation runs yet: start one above, or run `triptych eval --domain <domain>`, and reload this page.")
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
        "cut short": run.metrics[p].get("cut_short"),
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

cost_and_report(settings, run.domain)  # cost card, break-even chart, stakeholder page (issue 16)
