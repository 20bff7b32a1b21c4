"""Fine-tune page: each domain's active adapter, the training runs, and a start button with progress."""

from __future__ import annotations

import streamlit as st

from triptych.finetune import registry
from triptych.finetune.worker import format_eta
from triptych.ingest import known_domains
from triptych.ui import resources
from triptych.ui.widgets import escape_markdown

settings = resources.page_start("Fine-tune")
st.caption(f"Runs and adapters live in {settings.runs_dir} (TRIPTYCH_DATA_DIR/runs).")

domains = known_domains(settings)
st.subheader("Active model per domain")
rows = []
for d in domains:
    adapter = registry.active_adapter(settings, d)
    hosted = registry.hosted_model(settings, d)
    state = "– not fine-tuned yet"
    if adapter:
        state = adapter.run_id + (" (stale: its documents changed since)" if registry.is_stale(settings, d) else "")
    reading = registry.active_adapter(settings, d, registry.WITH_PASSAGES)
    rows.append({"domain": d, "local adapter (run)": state, "with-passages adapter (hybrid)": reading.run_id if reading
                 else "", "hosted model": hosted or ""})  # fmt: skip
if rows:
    st.dataframe(rows, hide_index=True)
else:
    st.info("No domains yet: add documents on the Documents page.")


st.subheader("Runs")
runs = registry.list_runs(settings)
if not runs:
    st.info("No training runs yet.")
else:
    st.dataframe(
        [
            {
                "run": r.run_id,
                "domain": r.domain,
                "kind": r.kind,
                "mode": r.mode,
                "status": r.status,
                "active": "yes" if r.active else "",
                "training set": r.training_source,
                "steps": "" if r.steps is None else r.steps,
                "test contains after (%)": "" if r.test_contains_after is None else r.test_contains_after,
                "wall (s)": "" if r.wall_s is None else r.wall_s,
            }
            for r in reversed(runs)
        ],
        hide_index=True,
    )

st.subheader("Train a LoRA adapter on the embedded model")
if not domains:
    st.stop()
domain = st.selectbox("Domain to fine-tune", domains, key="ft_domain")
st.caption(
    f"{settings.finetune_epochs} epochs closed-book, {settings.finetune_passages_epochs} with passages, rank "
    f"{settings.finetune_rank}, learning rate {settings.finetune_lr:g} (TRIPTYCH_FINETUNE_*). On CPU this takes "
    "minutes; the run is resumable from the command line."
)
MODE_LABELS = {
    "closed-book": "Closed-book: the question alone (the Fine-tuned column)",
    "with-passages": "With passages: retrieved passages in every example, so it learns to read and cite them "
    "(the Fine-tuned + RAG column)",
}
train_mode = st.radio("Training data", list(MODE_LABELS), format_func=MODE_LABELS.get, key="ft_mode")


def gold_qa_upload() -> bool:
    """Upload a domain's own gold QA (qa.jsonl), checked line by line; True when the domain has uploaded QA."""
    from triptych.finetune.dataset import TrainingSetError, keep_uploaded_qa, uploaded_qa_file
    from triptych.qa import QAFormatError

    kept = uploaded_qa_file(settings.data_dir, domain)
    with st.expander("Train on your own questions (gold QA)", expanded=kept.is_file()):
        st.caption('One JSON object a line: `{"id": "q1", "question": "…", "answer": "…", "alt_answers": ["…"], '
                   '"split": "train"}`; without splits, 30 % of the questions are held out for testing.')  # fmt: skip
        upload = st.file_uploader("QA file", type=["jsonl"], key="ft_qa_upload")
        if upload is not None and st.session_state.get("ft_qa_seen") != (domain, upload.file_id):
            st.session_state["ft_qa_seen"] = (domain, upload.file_id)  # checked and kept once per upload
            try:
                records = keep_uploaded_qa(settings.data_dir, domain, upload.getvalue(), upload.name)
            except QAFormatError as exc:
                head = f"{upload.name} was not kept: fix these lines and upload it again."
                st.session_state["ft_qa_result"] = (domain, [head, *exc.problems], False)
            except TrainingSetError as exc:
                st.session_state["ft_qa_result"] = (domain, [str(exc)], False)
            else:
                train = sum(r.split == "train" for r in records)
                done = (
                    f"{len(records)} questions kept: {train} to train on, {len(records) - train} held out for testing."
                )
                st.session_state["ft_qa_result"] = (domain, [done], True)
        shown, lines, ok = st.session_state.get("ft_qa_result", (None, [], True))
        for line in lines if shown == domain else []:
            (st.success if ok else st.error)(escape_markdown(line))
        if kept.is_file():
            st.caption(f"Training uses the uploaded questions ({escape_markdown(str(kept))}).")
            if st.button("Stop using them", key="ft_qa_remove"):
                kept.unlink(missing_ok=True)
                st.session_state.pop("ft_qa_result", None)
                st.rerun()
    return kept.is_file()


if not gold_qa_upload() and not (settings.corpora_dir / domain / "qa.jsonl").is_file():
    writer = settings.finetune_qa_model
    source = (
        f"written by {writer} from its documents"
        if writer
        else "generated from its documents' statements (TRIPTYCH_FINETUNE_QA_MODEL lets a capable model write them)"
    )
    st.caption(f"{domain} has no gold QA: its training questions will be {source}.")
queue = resources.training_queue()
job = queue.status(domain)
busy = job is not None and job.active
if registry.is_stale(settings, domain) and not busy:
    st.warning(f"{domain}'s adapter learned from documents that have changed since: retrain it.")
if st.button("Start training", key="ft_start", type="primary", disabled=busy):
    try:
        queue.enqueue(domain, front=True, mode=train_mode)
    except ValueError as exc:
        st.warning(str(exc))
if job is not None and job.status == "cancelled" and job.run_id and not busy:
    if st.button(f"Resume run {job.run_id}", key="ft_resume"):
        queue.enqueue(domain, resume=job.run_id, front=True)


@st.fragment(run_every=2.0)
def show_progress() -> None:
    """Poll the training queue and the domain's job every 2 s (the worker writes its status file)."""
    running, waiting = queue.current(), queue.pending()
    if running or waiting:
        line = f"Training queue: **{escape_markdown(running or '–')}** now"
        st.caption(line + (f", then {escape_markdown(', '.join(waiting))}" if waiting else ""))
    job = queue.status(domain)
    if job is None:
        return
    if job.total_steps and job.status in ("training", "done", "cancelled"):
        eta = f", {format_eta(job.eta_s)}" if job.eta_s is not None and job.status == "training" else ""
        st.progress(job.step / job.total_steps,
                    text=f"step {job.step}/{job.total_steps} · loss {job.loss or 0:.3f}{eta}")  # fmt: skip
    st.caption(f"status: {escape_markdown(job.status)}")
    if job.messages:
        st.caption(escape_markdown(job.messages[-1]))
    if job.error:
        st.error(f"Training failed: {escape_markdown(job.error)}")
    elif job.status == "done" and job.run_id:
        info = registry.read_run(settings, job.run_id) or {}
        column = "Fine-tuned + RAG" if info.get("mode") == registry.WITH_PASSAGES else "Fine-tuned"
        st.success(f"Run {escape_markdown(job.run_id)}: done, now the domain's active adapter ({column} column).")
    if job.active and st.button("Cancel", key="ft_cancel"):
        queue.cancel(domain)
        st.toast("Cancelling at the next step (the run stays resumable)…")


show_progress()
