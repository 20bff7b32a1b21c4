"""Compare page: one question to the selected pipelines at once, answers streaming side by side.

Each finished comparison is saved to the history and kept in the session, so toggling 'show
prompt' or reopening the page shows it again without asking the models a second time. The columns
answer under a setup, adjusted per column and re-asked where it changed (triptych/ui/adjust.py).
"""

from __future__ import annotations

import streamlit as st

from graphs.registry import PIPELINES, default_pipelines
from triptych.finetune import registry
from triptych.ingest import known_domains
from triptych.qa import domain_qa
from triptych.ui import adjust, resources
from triptych.ui.fact_link import change_fact_link
from triptych.ui.replay_view import link_to_replay
from triptych.ui.votes_view import blind_link
from triptych.ui.widgets import escape_markdown

settings = resources.page_start("Triptych")
st.caption("One question, three ways to answer it: prompt engineering, retrieval (RAG) and fine-tuning.")
link_to_replay()  # recorded demos play back without the model
resources.demo_indexes_ready(settings)

domains = known_domains(settings)


def forget_preset() -> None:
    """A preset question belongs to its domain: switching domains clears it from the box (typed ones stay)."""
    if st.session_state.get("preset") and st.session_state.get("question") == st.session_state["preset"]:
        st.session_state["question"] = ""
    st.session_state["preset"] = None


left, right = st.columns([1, 2])
domain = left.selectbox("Domain", domains or [None], key="domain", on_change=forget_preset)
chosen = right.multiselect(
    "Pipelines", list(PIPELINES), default=default_pipelines(settings), key="pipelines",
    format_func=lambda p: PIPELINES[p].label,
)  # fmt: skip
choice, columns = adjust.setup_section(settings, list(chosen), domain)
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
if columns:
    adjust.adjust_panels(settings, domain, columns, choice)
action = adjust.actions(settings, choice, columns, busy)


def gold_for(q: str, dom: str | None) -> list[str]:
    """The gold answers of a preset question (an exact match of the question), else []."""
    qa = domain_qa(settings.corpora_dir, dom, "test") if dom else []
    return next((r.gold_answers for r in qa if r.question == q.strip()), [])


def show_gold(gold: list[str]) -> None:
    """The gold answer under the columns."""
    if gold:
        st.info(f"**Gold answer:** {escape_markdown(' / '.join(gold))}", icon=":material/verified:")


if submitted and not busy:
    if not question.strip():
        st.warning("Type a question, or pick a preset one.")
    elif not chosen:
        st.warning("Pick at least one pipeline.")
    elif choice.working is None:
        st.warning("A column's adjustments are refused (see its Adjust panel): fix them, or reset to the setup.")
    else:
        gold = gold_for(question.strip(), domain)
        adjust.ask(settings, question.strip(), domain, columns, show_prompt, gold)
        show_gold(gold)
        change_fact_link(domain, question.strip())
elif action == "ask_again" and chosen:
    adjust.ask_again(settings, columns, show_prompt, gold_for)
elif (last := st.session_state.get("compare_last")) is not None:
    adjust.show_last(show_prompt, gold_for)
    show_gold(gold_for(last.question, last.domain))
    if last.id:
        blind_link(last.id)
    change_fact_link(last.domain, last.question)
