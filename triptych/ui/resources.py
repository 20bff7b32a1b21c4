"""Heavy objects shared by every session of the app process, created once (st.cache_resource)."""

from __future__ import annotations

import streamlit as st

from graphs.compare import Comparison
from triptych.llm.server import LocalModels
from triptych.settings import ConfigError, Settings, load_settings


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """Settings loaded once per process."""
    return load_settings()


@st.cache_resource(show_spinner=False)
def local_models() -> LocalModels:
    """The embedded model servers (started lazily; stopped when the process exits)."""
    return LocalModels(app_settings())


@st.cache_resource(show_spinner=False)
def comparison() -> Comparison:
    """The comparison runner (its retrievers and embedder are reused across questions)."""
    return Comparison(app_settings(), local_models())


@st.cache_resource(show_spinner=False)
def _demo_indexes_built(chroma_target: str, corpora_dir: str) -> bool:
    """Run once per index location and corpora folder (the cache key)."""
    from triptych.ingest import IngestProgress, ensure_demo_indexes

    bar = st.progress(0.0, text="Indexing the demo corpora (first start only)…")

    def progress(p: IngestProgress) -> None:
        bar.progress(p.done / p.total if p.total else 1.0, text=f"Indexing {p.domain}: {p.source}")

    try:
        ensure_demo_indexes(app_settings(), progress)
    finally:
        bar.empty()
    return True


def demo_indexes_ready(settings: Settings) -> None:
    """Build missing demo indexes once per process, with a progress bar (never rebuilds what exists)."""
    target = (
        str(settings.chroma_path.resolve())
        if settings.chroma_mode == "embedded"
        else (f"{settings.chroma_host}:{settings.chroma_port}")
    )
    _demo_indexes_built(target, str(settings.corpora_dir.resolve()))


def settings_or_stop() -> Settings:
    """Settings, or a clear error on the page and `st.stop()` when the configuration is wrong."""
    try:
        settings = app_settings()
        settings.check_keys()
        return settings
    except ConfigError as exc:
        st.error(f"Triptych cannot start: {exc}")
        st.info("Fix the variable named above in your environment or .env (see .env.example), then reload.")
        st.stop()
        raise  # unreachable: st.stop() raises


def sidebar_status(settings: Settings) -> None:
    """Say in the sidebar which endpoints are in use (never keys)."""
    with st.sidebar:
        local = [p for p in ("prompt", "rag", "finetuned") if settings.endpoint(p).is_local]
        if len(local) == 3:
            st.caption("Running on embedded defaults: local SmolLM2 via llama.cpp, no keys, no internet.")
        else:
            for p in ("prompt", "rag", "finetuned"):
                st.caption(f"**{p}**: {settings.endpoint(p).model}")
