"""Compare page: one question to the selected pipelines at once, answers streaming side by side."""

from __future__ import annotations

import streamlit as st

from graphs.compare import Event, PipelineResult
from graphs.registry import DEFAULT_PIPELINES, PIPELINES
from triptych.ingest import demo_domains
from triptych.qa import domain_qa
from triptych.ui.resources import comparison, demo_indexes_ready, settings_or_stop, sidebar_status

settings = settings_or_stop()
sidebar_status(settings)
demo_indexes_ready(settings)

st.title("Triptych")
st.caption("One question, three ways to answer it: prompt engineering, retrieval (RAG) and fine-tuning.")

domains = list(demo_domains(settings.corpora_dir))
left, right = st.columns([1, 2])
domain = left.selectbox("Domain", domains or [None], key="domain")
chosen = right.multiselect(
    "Pipelines", list(PIPELINES), default=DEFAULT_PIPELINES, key="pipelines",
    format_func=lambda p: PIPELINES[p].label,
)  # fmt: skip
presets = [r for r in domain_qa(settings.corpora_dir, domain, "test") if r.answerable] if domain else []


def use_preset() -> None:
    """Copy the chosen preset into the question box."""
    st.session_state["question"] = st.session_state.get("preset") or ""


st.selectbox("Preset question (with a gold answer)", [None] + [r.question for r in presets], key="preset",
             on_change=use_preset)  # fmt: skip
with st.form("ask"):
    question = st.text_input("Question", key="question", placeholder="Ask about the documents…")
    submitted = st.form_submit_button("Compare", type="primary")


def render_result(box, stats, result: PipelineResult) -> None:  # type: ignore[no-untyped-def]
    """Final state of one column: answer or error, sources, timings."""
    if result.error:
        box.error(result.error)
        return
    if not result.answer:
        box.info(result.notice or "(empty answer)")
        stats.caption("not run")
        return
    box.markdown(result.answer)
    if result.notice:
        box.caption(result.notice)
    ttft = f"{result.ttft_s:.2f} s" if result.ttft_s is not None else "–"
    stats.caption(
        f"first token {ttft} · total {result.total_s or 0:.2f} s · tokens {result.prompt_tokens or 0} in / "
        f"{result.completion_tokens or 0} out · ${result.cost_usd:.4f} · {result.model}"
    )


if submitted and question.strip() and chosen:
    columns = st.columns(len(chosen))
    boxes, stats, texts = {}, {}, {p: "" for p in chosen}
    for col, pid in zip(columns, chosen, strict=True):
        spec = PIPELINES[pid]
        col.subheader(spec.label)
        col.caption(spec.what_changed)
        stats[pid] = col.empty()
        boxes[pid] = col.empty()
        stats[pid].caption("waiting…")
    results: dict[str, PipelineResult] = {}

    def on_event(event: Event) -> None:
        """Update the event's column as it streams."""
        pid = event.pipeline
        if event.kind == "queued":
            stats[pid].caption("queued: waiting for the local model")
        elif event.kind == "started":
            stats[pid].caption("generating…")
        elif event.kind == "token":
            texts[pid] += event.text
            boxes[pid].markdown(texts[pid])
        elif event.result is not None:
            results[pid] = event.result
            render_result(boxes[pid], stats[pid], event.result)

    comparison().run(question, domain, chosen, on_event=on_event)
    for col, pid in zip(columns, chosen, strict=True):
        result = results[pid]
        if result.sources:
            with col.expander(f"Sources ({len(result.sources)})"):
                for s in result.sources:
                    where = f", page {s.page}" if s.page else ""
                    st.markdown(f"**[{s.n}] {s.title or s.source}**{where} · score {s.score:.2f}")
                    st.text(s.text)
        if result.messages:
            with col.expander("Show prompt"):
                for m in result.messages:
                    st.caption(m["role"])
                    st.text(m["content"])
    gold = next((r for r in presets if r.question == question), None)
    if gold is not None:
        st.info(f"Gold answer: {gold.answer}")
