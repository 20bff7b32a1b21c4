"""Settings page: endpoints in use (never keys, URL credentials masked) and a doctor panel."""

from __future__ import annotations

import streamlit as st

from triptych.doctor import run_checks
from triptych.runstore import mask_url_credentials
from triptych.settings import PIPELINE_ENDPOINTS
from triptych.ui import resources

settings = resources.page_start("Settings")
st.subheader("Endpoints in use")
st.caption("Keys are never shown: only the name of the variable each endpoint reads its key from.")
rows = []
for p in PIPELINE_ENDPOINTS:
    cfg = settings.endpoint(p)
    rows.append(
        {
            "pipeline": p,
            "model": cfg.model,
            "base URL": mask_url_credentials(cfg.endpoint_url()) or "embedded llama.cpp",
            "key variable": cfg.key_env or "(none needed)",
        }
    )
st.dataframe(rows, hide_index=True)
st.caption(
    f"Embeddings: {settings.embedding_model} · Chroma: {settings.chroma_mode} · local threads: {settings.local_threads}"
)

st.subheader("Embedded model servers")
servers = resources.local_models().running()
if servers:
    st.dataframe(
        [{"model": alias, "URL": srv.base_url, "pid": srv.pid,
          "adapter": srv.spec.lora_path.name if srv.spec.lora_path else ""} for alias, srv in servers.items()],
        hide_index=True,
    )  # fmt: skip
else:
    st.caption("None running: the base model's server starts with the first question that needs it.")
st.caption(f"Base model: {settings.local_model_path or 'SmolLM2-135M-Instruct (bundled)'}")

st.subheader("Doctor")
if st.button("Run doctor", key="doctor"):
    with st.spinner("Checking…"):
        checks = run_checks(settings, start_local=False)
    for c in checks:
        line = mask_url_credentials(f"**{c.name}**: {c.detail}" + (f" — fix: {c.fix}" if c.fix else ""))
        {"ok": st.success, "warn": st.warning, "fail": st.error}[c.status](line)
