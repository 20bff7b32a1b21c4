"""Documents page: upload files into a domain (with a result per file), list, preview and delete them."""

from __future__ import annotations

import math

import streamlit as st

from triptych.documents.validation import EXTENSIONS, DocumentRejected, check_batch
from triptych.index import IndexNotFoundError, IndexStoreError, check_domain, chroma_client, open_index
from triptych.ingest import IngestProgress, ingest_uploads, known_domains
from triptych.ui import resources
from triptych.ui.widgets import escape_markdown

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
try:
    check_batch(len(files or []), settings.max_upload_files)
    too_many = ""
except DocumentRejected as exc:
    st.error(too_many := str(exc))
ingest = st.button("Add to index", key="docs_ingest", type="primary", disabled=not (files and domain) or bool(too_many))
if ingest and not too_many:  # checked here too: a disabled button is only the browser's side
    assert domain is not None
    uploads = [(f.name, f.getvalue()) for f in files or []]
    bar = st.progress(0.0, text=f"Indexing {len(uploads)} file(s) into {domain}…")

    def progress(p: IngestProgress) -> None:
        """Move the bar after each file."""
        bar.progress(p.done / p.total if p.total else 1.0, text=f"{p.done}/{p.total}: {p.source} ({p.status})")

    try:
        with resources.ingest_tracker().ingesting(domain):
            report = ingest_uploads(settings, domain, uploads, progress=progress)
    except IndexStoreError as exc:
        st.error(str(exc))
    else:
        st.session_state["docs_report"] = report
    finally:
        bar.empty()
        resources.comparison().forget_retriever(domain)

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
try:
    index = open_index(settings, domain, client=chroma_client(settings))
    records = index.documents()
except IndexNotFoundError:
    st.info(f"No documents in {escape_markdown(domain)} yet: upload some above.")
    st.stop()
except IndexStoreError as exc:
    st.error(str(exc))
    st.stop()

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
        with resources.ingest_tracker().ingesting(domain):
            deleted = index.delete_document(doc_id)
            resources.comparison().forget_retriever(domain)
        st.session_state.pop("docs_confirm", None)
        st.toast(f"Deleted {doc_id}" if deleted else f"{doc_id} was already gone")
        st.rerun()
