"""Heavy objects shared by every session of the app process, created once (st.cache_resource)."""

from __future__ import annotations

import streamlit as st

from triptych.llm.server import LocalModels
from triptych.settings import ConfigError, Settings, load_settings


@st.cache_resource(show_spinner=False)
def local_models() -> LocalModels:
    """The embedded model servers (started lazily; stopped when the process exits)."""
    return LocalModels(app_settings())


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """Settings loaded once per process."""
    return load_settings()


def settings_or_stop() -> Settings:
    """Settings, or a clear error on the page and `st.stop()` when the configuration is wrong."""
    try:
        return app_settings()
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
