"""The Documents page's index variants: which chunkings and models a domain has, build another, delete one.

Builds run as background jobs (`IngestJobs.start_build`) with a progress bar; the variant in use keeps
answering meanwhile. Called by documents_page.py; widget keys start with `docs_variant`.
"""

from __future__ import annotations

import streamlit as st

from triptych.documents.chunking import ChunkingConfig
from triptych.settings import Settings
from triptych.ui import resources
from triptych.ui.ingest_jobs import IngestJobs
from triptych.ui.widgets import escape_markdown
from triptych.variants import Variant, VariantInfo, delete_variant

JOB_KEY = "docs_build_job"
REPORT_KEY = "docs_build_report"


def start_build(settings: Settings, jobs: IngestJobs, variant: Variant) -> None:
    """Build (or update) a variant in the background; this session follows its progress."""
    comparison = resources.comparison()
    job = jobs.start_build(settings, variant, on_done=lambda job: comparison.forget_retriever(variant.domain))
    st.session_state[JOB_KEY] = job.job_id
    st.session_state.pop(REPORT_KEY, None)


def build_progress(jobs: IngestJobs) -> None:
    """This session's build: a progress bar while it runs (refreshed every second), its report once done."""

    @st.fragment(run_every=1.0)
    def follow() -> None:
        job = jobs.get(st.session_state.get(JOB_KEY))
        if job is None or job.variant is None:
            return
        if job.running:
            text = f"Building {job.variant.label} for {job.domain}: "
            if job.total:
                text += f"{job.done}/{job.total} document(s)" + (f", {job.current}" if job.current else "")
            else:
                text += "starting (the embedding model loads with the first document)…"
            st.progress(job.done / job.total if job.total else 0.0, text=escape_markdown(text))
            st.caption("The index in use keeps answering while this one is built.")
            return
        st.session_state.pop(JOB_KEY, None)
        st.session_state[REPORT_KEY] = (job.variant.label, job.report, job.error)
        st.rerun()

    follow()
    if (done := st.session_state.pop(REPORT_KEY, None)) is not None:
        label, report, error = done
        if error:
            st.error(escape_markdown(f"Building {label} stopped: {error}"))
        elif report is not None:
            (st.success if not report.refused else st.warning)(escape_markdown(f"{label}: {report.summary()}"))
            for o in report.refused:
                st.error(f"**{escape_markdown(o.source)}** refused: {escape_markdown(o.reason or '')}")


def offer_current(settings: Settings, jobs: IngestJobs, infos: list[VariantInfo], current: Variant) -> None:
    """When the current settings' variant is missing or lacks documents: say so, with the button that builds it."""
    mine = next((i for i in infos if i.in_use), None)
    if mine is not None and not mine.out_of_date:
        return
    building = jobs.building(current) is not None
    if mine is None:
        st.warning(
            f"The current settings ({escape_markdown(current.label)}) have no index for "
            f"{escape_markdown(current.domain)} yet: the RAG column cannot answer until it is built "
            f"(or run `{current.build_command()}`)."
        )
        label = "Build this index"
    else:
        st.warning(f"The index in use lacks {mine.out_of_date} document(s) the domain's other indexes hold.")
        label = "Update this index"
    if st.button(label, key="docs_build_current", type="primary", disabled=building):
        start_build(settings, jobs, current)
        st.rerun()


def show_variants(settings: Settings, jobs: IngestJobs, infos: list[VariantInfo], current: Variant) -> None:
    """The table of a domain's variants, a form to build another, and update/delete of a picked one."""
    st.subheader("Indexes (chunking and embedding model)")
    st.caption(
        "Each chunking and embedding model of a domain is its own index, built from the same documents; "
        "the Settings (or a setup) pick the one retrieval uses."
    )
    if infos:
        st.dataframe(
            [
                {
                    "chunk size": i.variant.chunk_size,
                    "overlap": i.variant.chunk_overlap,
                    "embedding model": i.variant.embedding_model,
                    "documents": i.documents,
                    "chunks": i.chunks,
                    "KB (approx.)": round(i.approx_bytes / 1024, 1),
                    "in use": "✓" if i.in_use else "",
                    "missing documents": i.out_of_date,
                }
                for i in infos
            ],
            hide_index=True,
            key="docs_variants",
        )
    with st.expander("Build another index", expanded=False):
        size_col, overlap_col, model_col = st.columns([1, 1, 2])
        size = size_col.number_input("Chunk size (tokens)", 16, 4096, current.chunk_size, key="docs_variant_size")
        overlap = overlap_col.number_input("Overlap (tokens)", 0, 4095, current.chunk_overlap,
                                           key="docs_variant_overlap")  # fmt: skip
        model = model_col.text_input("Embedding model", current.embedding_model, key="docs_variant_model")
        wanted = Variant(current.domain, model.strip() or current.embedding_model, int(size), int(overlap))
        try:
            ChunkingConfig(wanted.chunk_size, wanted.chunk_overlap)
            problem = ""
        except ValueError as exc:
            problem = str(exc)
            st.error(problem)
        exists = any(i.variant.same_as(wanted) for i in infos)
        if exists:
            st.caption("This index exists already: building it again adds only what it lacks.")
        if st.button("Build index", key="docs_variant_build", disabled=bool(problem)) and not problem:
            start_build(settings, jobs, wanted)
            st.rerun()
    if not infos:
        return
    labels = {i.variant.collection: i for i in infos}
    picked = labels[
        st.selectbox(
            "Index",
            list(labels),
            key="docs_variant_pick",
            format_func=lambda c: labels[c].variant.label + (" (in use)" if labels[c].in_use else ""),
        )
    ]
    update, confirm_col, delete = st.columns([1, 2, 1])
    busy = jobs.building(picked.variant) is not None
    if picked.out_of_date and update.button("Update", key="docs_variant_update", disabled=busy):
        start_build(settings, jobs, picked.variant)
        st.rerun()
    confirmed = True
    if picked.in_use:  # never the index in use without a confirmation
        confirmed = confirm_col.checkbox("It is in use: delete it anyway", key="docs_variant_confirm")
    if delete.button("Delete index", key="docs_variant_delete", disabled=busy or not confirmed) and confirmed:
        with resources.ingest_tracker().ingesting(current.domain):
            delete_variant(settings, picked.variant)
            resources.comparison().forget_retriever(current.domain)
        st.session_state.pop("docs_variant_confirm", None)
        st.toast(f"Deleted the index {picked.variant.label}")
        st.rerun()
