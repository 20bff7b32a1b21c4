"""Compare page: one question to the selected pipelines at once, answers streaming side by side.

Each finished comparison is saved to the history and kept in the session, so toggling 'show
prompt' or reopening the page shows it again without asking the models a second time.
"""

from __future__ import annotations

import streamlit as st

from graphs.compare import Event
from graphs.registry import PIPELINES, default_pipelines
from graphs.result import PipelineResult
from triptych.finetune import registry
from triptych.history import HistoryRecord, save_comparison
from triptych.ingest import known_domains
from triptych.qa import domain_qa
from triptych.ui import resources
from triptych.ui.widgets import (
    column_header,
    escape_markdown,
    render_details,
    render_final,
    render_results,
    safe_markdown,
)

settings = resources.page_start("Triptych")
st.caption("One question, three ways to answer it: prompt engineering, retrieval (RAG) and fine-tuning.")
resources.demo_indexes_ready(settings)

domains = known_domains(settings)
left, right = st.columns([1, 2])
domain = left.selectbox("Domain", domains or [None], key="domain")
chosen = right.multiselect(
    "Pipelines", list(PIPELINES), default=default_pipelines(settings), key="pipelines",
    format_func=lambda p: PIPELINES[p].label,
)  # fmt: skip
presets = [r for r in domain_qa(settings.corpora_dir, domain, "test") if r.answerable] if domain else []


def use_preset() -> None:
    """Copy the chosen preset into the question box."""
    st.session_state["question"] = st.session_state.get("preset") or ""


st.selectbox("Preset question (with a gold answer)", [None] + [r.question for r in presets], key="preset",
             on_change=use_preset)  # fmt: skip


@st.fragment(run_every=3.0)
def show_adapter_training(dom: str) -> None:
    """The fine-tuned column's adapter is training: its progress, polled every 3 s until it is ready."""
    job = resources.training_queue().status(dom)
    if job is not None and job.active:
        st.info(f"Fine-tuned column: {escape_markdown(job.describe())}.", icon=":material/model_training:")
    elif registry.active_adapter(settings, dom) is not None:
        st.success("Fine-tuned column: its adapter is trained and answers now.", icon=":material/check:")


def show_adapter_status(dom: str | None) -> None:
    """Say above the columns when the fine-tuned column's adapter is training, or stale (with a retrain)."""
    if not dom or not {"finetuned", "finetuned_rag"} & set(chosen) or not settings.endpoint("finetuned").is_local:
        return
    job = resources.training_queue().status(dom)
    if job is not None and job.active:
        show_adapter_training(dom)
    elif registry.is_stale(settings, dom):
        st.warning("Fine-tuned column: its adapter learned from documents that have changed since.")
        if st.button("Retrain the adapter", key="ft_retrain"):
            try:
                resources.training_queue().enqueue(dom, front=True)
            except ValueError as exc:
                st.warning(str(exc))
            else:
                st.rerun()


show_adapter_status(domain)
busy = resources.ingest_tracker().busy(domain)
if busy:
    st.warning(
        f"Documents are being added to **{escape_markdown(domain or '')}** right now: questions can be sent "
        "to it when the ingestion has finished.",
        icon=":material/hourglass_top:",
    )
with st.form("ask"):
    question = st.text_input("Question", key="question", placeholder="Ask about the documents…")
    submitted = st.form_submit_button("Compare", type="primary", disabled=busy)
show_prompt = st.toggle("Show prompt", key="show_prompt", help="Reveal the exact messages each pipeline sent.")


def gold_for(q: str, dom: str | None) -> list[str]:
    """The gold answers of a preset question (an exact match of the question), else []."""
    qa = domain_qa(settings.corpora_dir, dom, "test") if dom else []
    return next((r.gold_answers for r in qa if r.question == q.strip()), [])


def show_gold(gold: list[str]) -> None:
    """The gold answer under the columns."""
    if gold:
        st.info(f"**Gold answer:** {escape_markdown(' / '.join(gold))}", icon=":material/verified:")


def stream_comparison(q: str, dom: str | None, pipelines: list[str]) -> dict[str, PipelineResult]:
    """Run the comparison with one column per pipeline, filled as tokens arrive."""
    gold = gold_for(q, dom)
    columns = st.columns(len(pipelines))
    boxes, stats, texts = {}, {}, {p: "" for p in pipelines}
    for col, pid in zip(columns, pipelines, strict=True):
        with col:
            column_header(PIPELINES[pid].label, PIPELINES[pid].what_changed)
            stats[pid] = st.empty()
            boxes[pid] = st.empty()
        stats[pid].caption("waiting…")

    def on_event(event: Event) -> None:
        """Update the event's column as it streams."""
        pid = event.pipeline
        if event.kind == "queued":
            stats[pid].caption(f"queued: {event.text or 'waiting for the local model'}")
        elif event.kind == "started":
            stats[pid].caption("generating…")
        elif event.kind == "token":
            texts[pid] += event.text
            boxes[pid].markdown(safe_markdown(texts[pid]))  # no remote image or link, even mid-stream
        elif event.result is not None:
            render_final(boxes[pid], stats[pid], event.result)

    results = resources.comparison().run(q, dom, pipelines, on_event=on_event)
    for col, pid in zip(columns, pipelines, strict=True):
        with col:
            render_details(results[pid], show_prompt=show_prompt, gold_answers=gold, key=pid)
    show_gold(gold)
    return results


if submitted and not busy:
    if not question.strip():
        st.warning("Type a question, or pick a preset one.")
    elif not chosen:
        st.warning("Pick at least one pipeline.")
    else:
        results = stream_comparison(question.strip(), domain, list(chosen))
        try:
            record = save_comparison(settings, question.strip(), domain, results)
        except OSError as exc:
            st.warning(f"Not saved to the history: {exc}")
            record = HistoryRecord.unsaved(question.strip(), domain, results)
        st.session_state["compare_last"] = record
        if record.id:
            st.caption(f"Saved to the history as {record.id}.")
elif (last := st.session_state.get("compare_last")) is not None:
    st.caption(f"Last comparison: {escape_markdown(last.question)} ({escape_markdown(last.domain or 'no domain')})")
    gold = gold_for(last.question, last.domain)
    render_results(last.results, show_prompt=show_prompt, gold_answers=gold)
    show_gold(gold)
