"""Settings page: endpoints in use (never keys) and a doctor panel."""

from __future__ import annotations

import streamlit as st

from triptych.doctor import run_checks
from triptych.settings import PIPELINE_ENDPOINTS
from triptych.ui.resources import settings_or_stop, sidebar_status

settings = settings_or_stop()
sidebar_status(settings)

st.title("Settings")
rows = []
for p in PIPELINE_ENDPOINTS:
    cfg = settings.endpoint(p)
    rows.append(
        {
            "pipeline": p,
            "model": cfg.model,
            "base URL": cfg.base_url or cfg.provider.base_url or "embedded llama.cpp",
            "key variable": cfg.api_key_env or cfg.provider.key_env or "(none needed)",
        }
    )
st.dataframe(rows, hide_index=True)
st.caption(
    f"Embeddings: {settings.embedding_model} · Chroma: {settings.chroma_mode} · local threads: {settings.local_threads}"
)

if st.button("Run doctor", key="doctor"):
    with st.spinner("Checking…"):
        checks = run_checks(settings, start_local=False)
    for c in checks:
        line = f"**{c.name}**: {c.detail}" + (f" — fix: {c.fix}" if c.fix else "")
        {"ok": st.success, "warn": st.warning, "fail": st.error}[c.status](line)
