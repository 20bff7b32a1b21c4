"""Change a fact page: edit the sentence that holds an answer, re-index that document, race the columns.

RAG answers with the new fact seconds after the change; the fine-tuned column still answers from
its weights, with the time (and cost) to retrain measured from its adapter's own run, and a button
that retrains. Undo restores the original document and index. The logic is triptych/live_change.py.
Opened from Compare with `?domain=...&question=...`, the question and domain are carried over.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from graphs.registry import PIPELINES, default_pipelines
from triptych import live_change
from triptych.finetune.dataset import gold_records
from triptych.index import IndexStoreError, open_index
from triptych.ingest import known_domains
from triptych.live_change import ChangeError, FactChange
from triptych.ui import resources
from triptych.ui.widgets import escape_markdown, safe_markdown

settings = resources.page_start("Change a fact")
st.caption(
    "Knowledge changes. Edit the sentence that holds an answer: Triptych keeps the original, re-indexes only "
    "that document and asks the same question again in every column. RAG follows at once; a fine-tuned model "
    "keeps what it learned until it is trained again."
)
resources.demo_indexes_ready(settings)

params = st.query_params
domains = known_domains(settings)
if "fact_domain" not in st.session_state and params.get("domain") in domains:
    st.session_state["fact_domain"] = params.get("domain")
domain = st.selectbox("Domain", domains or [None], key="fact_domain")
if not domain:
    st.info("No domain yet: add documents on the Documents page.")
    st.stop()

if notice := st.session_state.pop("fact_notice", None):
    st.success(notice, icon=":material/undo:")


def quote(text: str) -> str:
    """A sentence of a document, shown as written."""
    return f"“{escape_markdown(text)}”"


def show_active(active: live_change.ActiveChange) -> None:
    """The change in force, with Undo."""
    c = active.change
    took = f", re-indexed in {active.reindex_s:.1f} s" if active.reindex_s is not None else ""
    st.warning(
        f"**{escape_markdown(active.source)}** is changed (since {escape_markdown(active.applied_at)}{took}): "
        f"{quote(c.old_text)} → {quote(c.new_text)}",
        icon=":material/edit_note:",
    )
    if st.button("Undo: restore the original", key="fact_undo", icon=":material/undo:"):
        with st.spinner(f"Restoring {active.source} and re-indexing it…"):
            try:
                with resources.ingest_tracker().ingesting(domain):
                    undone = live_change.undo_change(settings, domain)
            except ChangeError as exc:
                st.error(str(exc))
                return
        resources.comparison().forget_retriever(domain)
        st.session_state["fact_undone_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        st.session_state["fact_notice"] = (
            f"Restored the original {undone.doc_id} ({undone.chunks} chunks re-indexed in {undone.reindex_s:.1f} s)."
        )
        st.rerun()


def compared_before(change: FactChange) -> tuple[dict[str, Any] | None, list[str]]:
    """Compare's answers to this very question on the unchanged documents, if it is the last thing asked there
    (made after the domain's last race and Undo); else None. With the pipelines to race."""
    last = st.session_state.get("compare_last")
    since = max([r.get("at", "") for r in live_change.read_races(settings, domain)]
                + [st.session_state.get("fact_undone_at", "")])  # fmt: skip
    if last is None or last.domain != domain or last.question.strip() != change.question.strip():
        return None, default_pipelines(settings, domain)
    if not last.created_at or last.created_at <= since or any(r.error for r in last.results.values()):
        return None, default_pipelines(settings, domain)
    compared = {k: r for k, r in last.results.items() if k in PIPELINES}  # plain pipeline columns only
    return (compared, list(compared)) if compared else (None, default_pipelines(settings, domain))


def race(change: FactChange) -> None:
    """Ask, change, re-index, ask again: progress in a status box, then the page shows the recorded race."""
    before, pipelines = compared_before(change)
    with st.status("Changing the fact and asking again…", expanded=True) as status:
        if before is not None:
            status.write("the answers before the change: the comparison just made on Compare")
        try:
            with resources.ingest_tracker().ingesting(domain):
                live_change.run_race(settings, resources.comparison(), domain, change, pipelines, before=before,
                                     on_step=status.write)  # fmt: skip
        except (ChangeError, IndexStoreError) as exc:
            status.update(label="The fact was not changed", state="error")
            st.error(str(exc))
            return
        status.update(label="Done", state="complete")
    st.rerun()


def verdict(side: dict[str, Any]) -> str:
    """A badge: which fact an answer states (none for a column that did not answer)."""
    if not side.get("answer"):
        return ""
    if side.get("states_new"):
        return ":green-badge[:material/check: the new fact]"
    if side.get("states_old"):
        return ":orange-badge[:material/history: still the old fact]"
    if side.get("states_new") is None:
        return ""
    return ":gray-badge[neither fact]"


def show_answer(title: str, side: dict[str, Any]) -> None:
    """One answer of one column, before or after the change."""
    st.markdown(f"**{title}** {verdict(side)}")
    if side.get("answer"):
        st.markdown(safe_markdown(side["answer"]))
    else:
        st.caption(escape_markdown(side.get("error") or "(no answer)"))
    if side.get("total_s") is not None:
        st.caption(f":material/timer: {side['total_s']:.2f} s")


def show_retrain() -> None:
    """The fine-tuned column: what retraining takes, from its adapter's run, and a button that retrains."""
    estimate = live_change.retrain_estimate(settings, domain)
    if estimate is not None:
        st.info(f"Fine-tuned: {escape_markdown(estimate.describe())}.", icon=":material/model_training:")
    else:
        st.info("Fine-tuned: no adapter trained for this domain yet, so no retraining time to measure.")
    if gold_records(settings.corpora_dir, settings.data_dir, domain):
        st.caption(
            "Its training set is this domain's gold QA, not the documents: a retrain learns the new fact only "
            "where a trained question's answer says it."
        )
    if not settings.endpoint("finetuned").is_local:
        return
    job = resources.training_queue().status(domain)
    if job is not None and job.active:
        follow_training(domain)
    elif st.button("Retrain the fine-tuned column", key="fact_retrain", icon=":material/model_training:"):
        try:
            resources.training_queue().enqueue(domain, front=True)
        except ValueError as exc:
            st.warning(str(exc))
        else:
            st.rerun()


@st.fragment(run_every=3.0)
def follow_training(dom: str) -> None:
    """A retrain in progress, polled every 3 s; the page is shown again when it has finished."""
    job = resources.training_queue().status(dom)
    if job is not None and job.active:
        st.caption(f":material/hourglass_top: Fine-tuned column: {escape_markdown(job.describe())}")
    else:
        st.rerun()


def show_race(r: dict[str, Any]) -> None:
    """The latest race of the domain: the headline, then each column before and after."""
    st.subheader("The race")
    st.markdown(f"**Question:** {escape_markdown(r['question'])}")
    rag = r["columns"].get("rag", {}).get("after", {})
    if r.get("rag_new_fact_s") is not None:
        st.success(
            f"RAG answered with the new fact **{r['rag_new_fact_s']:.1f} s** after the change: "
            f"{r['reindex_s']:.1f} s re-indexing {escape_markdown(r['doc_id'])} + {rag.get('total_s', 0):.1f} s "
            "answering.",
            icon=":material/bolt:",
        )
    else:
        st.warning(
            f"RAG did not state the new fact this time ({r['reindex_s']:.1f} s re-indexing): see its answer below.",
            icon=":material/search_off:",
        )
    for col, (pid, column) in zip(st.columns(len(r["columns"])), r["columns"].items(), strict=True):
        with col:
            st.markdown(f"#### {escape_markdown(column['label'])}")
            show_answer("Before", column["before"])
            show_answer("After", column["after"])
            if pid == "finetuned":
                show_retrain()
    st.caption(f"Race {r['id']} at {r['at']}, recorded in {live_change.races_path(settings)}.")


try:
    active = live_change.active_change(settings, domain)
    scripted = live_change.scripted_change(settings.corpora_dir, domain)
except ChangeError as exc:
    st.error(str(exc))
    st.stop()

if active is not None:
    show_active(active)
elif scripted is not None:
    st.markdown(
        f"**Scripted change** in {escape_markdown(scripted.doc_id)}: {quote(scripted.old_text)} → "
        f"{quote(scripted.new_text)}  \n**Question:** {escape_markdown(scripted.question)}"
    )
    if st.button("Run the scripted change", type="primary", key="fact_scripted", icon=":material/play_arrow:"):
        race(scripted)

if active is None:
    carried = params.get("question") or ""
    with st.expander("Change a fact yourself", expanded=bool(carried) or scripted is None):
        try:
            docs = [d.doc_id for d in open_index(settings, domain).documents()]
        except IndexStoreError as exc:
            docs = []
            st.warning(str(exc))
        texts = [d for d in docs if d.lower().endswith(live_change.TEXT_SUFFIXES)]
        with st.form("fact_form"):
            doc = st.selectbox("Document (Markdown, text or HTML)", texts or [None], key="fact_doc")
            old = st.text_area("The sentence as it is written", key="fact_old", height=80)
            new = st.text_area("The new sentence", key="fact_new", height=80)
            question = st.text_input("Question to ask again", value=carried, key="fact_question")
            left, right = st.columns(2)
            old_answer = left.text_input("Old answer (optional, marks the answers)", key="fact_old_answer")
            new_answer = right.text_input("New answer (optional)", key="fact_new_answer")
            if st.form_submit_button("Change the fact and race"):
                try:
                    change = FactChange(doc or "", old, new, question.strip(), old_answer, new_answer).checked()
                except ChangeError as exc:
                    st.error(str(exc))
                else:
                    race(change)

races = live_change.read_races(settings, domain)
if races:
    show_race(races[-1])
elif active is not None:
    show_retrain()
