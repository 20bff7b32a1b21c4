"""Documents page: upload files into a domain (with a result per file), list, preview and delete them;
list, build and delete the domain's indexes (one per chunking and embedding model)."""

from __future__ import annotations

import math

import streamlit as st

from triptych.documents.validation import EXTENSIONS, DocumentRejected, check_batch
from triptych.index import IndexNotFoundError, IndexStoreError, check_domain, chroma_client, open_index
from triptych.ingest import SavedBatch, known_domains, save_uploads, saved_batches
from triptych.ui import resources
from triptych.ui.index_variants import build_progress, offer_current, show_variants
from triptych.ui.ingest_jobs import ingest_jobs
from triptych.ui.widgets import escape_markdown
from triptych.variants import Variant, VariantInfo, list_variants, remove_document_everywhere

settings = resources.page_start("Documents")
st.caption(
    f"Accepted: {', '.join(EXTENSIONS)} · up to {settings.max_upload_mb:g} MB per file "
    f"(TRIPTYCH_MAX_UPLOAD_MB), {settings.max_upload_files} per upload (TRIPTYCH_MAX_UPLOAD_FILES) · PDFs up to "
    f"{settings.max_pdf_pages} pages · embeddings: {settings.embedding_model}"
)

NEW = "(new domain…)"
domains = known_domains(settings)
picked = st.selectbox("Domain", [*domains, NEW], key="docs_domain")
domain: str | None = picked
if picked == NEW:
    name = st.text_input("New domain name", key="docs_new_domain", placeholder="e.g. sales_playbook")
    domain = None
    if name:
        try:
            domain = check_domain(name.strip())
        except ValueError as exc:
            st.error(str(exc))

st.subheader("Upload")
files = st.file_uploader(
    "Files to add",
    type=[e.lstrip(".") for e in EXTENSIONS],
    accept_multiple_files=True,
    key="docs_upload",
    max_upload_size=max(1, math.ceil(settings.max_upload_mb)),
    help="Each file goes in completely or not at all; a refused file does not stop the others.",
)
jobs = ingest_jobs()


def start_indexing(batch: SavedBatch) -> None:
    """Index a saved batch in the background; this session follows its progress."""
    comparison = resources.comparison()
    job = jobs.start(
        settings, batch, busy=resources.ingest_tracker().ingesting,
        on_done=lambda job: comparison.forget_retriever(job.domain),
    )  # fmt: skip
    st.session_state["docs_job"] = job.job_id
    st.session_state.pop("docs_report", None)


try:
    check_batch(len(files or []), settings.max_upload_files)
    too_many = ""
except DocumentRejected as exc:
    st.error(too_many := str(exc))
ingest = st.button("Add to index", key="docs_ingest", type="primary", disabled=not (files and domain) or bool(too_many))
if ingest and not too_many:  # checked here too: a disabled button is only the browser's side
    assert domain is not None
    # saved to disk first: the indexing goes on in the background whatever is clicked meanwhile
    start_indexing(save_uploads(settings, domain, [(f.name, f.getvalue()) for f in files or []]))

running = {j.job_id for j in jobs.running()}
waiting = [b for b in saved_batches(settings) if b.folder.name not in running]
for batch in waiting:  # saved by an upload whose indexing was interrupted (the app stopped) or failed
    names = ", ".join(batch.names[:5]) + (" …" if len(batch.names) > 5 else "")
    st.warning(f"{len(batch.names)} uploaded file(s) for {escape_markdown(batch.domain)} are saved but not indexed: "
               f"{escape_markdown(names)}")  # fmt: skip
    if st.button("Index them now", key=f"docs_resume_{batch.folder.name}"):
        start_indexing(batch)
        st.rerun()


@st.fragment(run_every=1.0)
def indexing_progress() -> None:
    """This session's indexing job: its progress while it runs; its report (full rerun) once it is done."""
    job = jobs.get(st.session_state.get("docs_job"))
    if job is None:
        return
    if job.running:
        text = f"Indexing into {job.domain}: {job.done}/{job.total} file(s)"
        text += f", {job.current}" if job.current else ""
        st.progress(job.done / job.total if job.total else 0.0, text=escape_markdown(text))
        st.caption("The files are saved: indexing goes on whatever you click meanwhile.")
        return
    st.session_state.pop("docs_job", None)
    if job.error:
        st.session_state["docs_error"] = f"Indexing stopped ({job.error}); the files are kept: index them again below."
    else:
        st.session_state["docs_report"] = job.report
    st.rerun()


indexing_progress()
if error := st.session_state.pop("docs_error", None):
    st.error(escape_markdown(error))

report = st.session_state.get("docs_report")
if report is not None:
    (st.success if not report.refused else st.warning)(escape_markdown(report.summary()))
    st.dataframe(
        [{"file": o.source, "result": o.status, "chunks": o.chunks, "reason": o.reason or ""} for o in report.outcomes],
        hide_index=True,
        key="docs_outcomes",
    )
    for o in report.refused:
        st.error(f"**{escape_markdown(o.source)}** refused: {escape_markdown(o.reason or '')}")

st.subheader("In the index")
if not domain:
    st.info("Pick or name a domain.")
    st.stop()
build_progress(jobs)
current = Variant.of(settings, domain)
variants: list[VariantInfo] = []
try:
    variants = list_variants(settings, domain, chroma_client(settings))
    offer_current(settings, jobs, variants, current)
    index = open_index(settings, domain, client=chroma_client(settings))
    records = index.documents()
except IndexNotFoundError:
    if not variants:
        st.info(f"No documents in {escape_markdown(domain)} yet: upload some above.")
    show_variants(settings, jobs, variants, current)
    st.stop()
except IndexStoreError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Index in use: {escape_markdown(current.label)} (TRIPTYCH_CHUNK_SIZE, _CHUNK_OVERLAP, _EMBEDDING_MODEL)")

st.caption(f"{len(records)} document(s), {sum(r.chunks for r in records)} chunks.")
st.dataframe(
    [
        {
            "document": r.doc_id,
            "title": r.title,
            "kind": r.kind,
            "pages": r.pages,
            "chunks": r.chunks,
            "KB": round(r.bytes / 1024, 1),
            "ingested (UTC)": r.ingested_at,
        }
        for r in records
    ],
    hide_index=True,
)
if records:
    doc_id = st.selectbox("Document", [r.doc_id for r in records], key="docs_pick")
    view, remove = st.columns([4, 1])
    with view.expander("Preview", expanded=False):
        text = index.document_text(doc_id)
        st.caption(f"{len(text):,} characters; the first 5,000:")
        st.text(text[:5000])
    confirm = remove.checkbox("Confirm delete", key="docs_confirm")
    if remove.button("Delete", key="docs_delete", disabled=not confirm):
        # from every index of the domain, so that no update of one brings it back
        with resources.ingest_tracker().ingesting(domain):
            deleted = remove_document_everywhere(settings, domain, doc_id)
            resources.comparison().forget_retriever(domain)
        st.session_state.pop("docs_confirm", None)
        st.toast(f"Deleted {doc_id}" if deleted else f"{doc_id} was already gone")
        st.rerun()

show_variants(settings, jobs, variants, current)
