"""Heavy objects shared by every session of the app process, created once (st.cache_resource)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from graphs.compare import Comparison
from graphs.registry import PIPELINES
from triptych.llm.server import LocalModels
from triptych.settings import ConfigError, Settings, load_settings, load_tracing_env
from triptych.ui.training_jobs import TrainingQueue


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """Settings loaded once per process (with `.env`'s tracing variables put into the environment)."""
    load_tracing_env()
    return load_settings()


@st.cache_resource(show_spinner=False)
def local_models() -> LocalModels:
    """The embedded model servers (started lazily; stopped when the process exits)."""
    return LocalModels(app_settings())


@st.cache_resource(show_spinner=False)
def comparison() -> Comparison:
    """The comparison runner (its retrievers and embedder are reused across questions)."""
    return Comparison(app_settings(), local_models())


class IngestTracker:
    """Which domains are being ingested right now, by any session of this process.

    Deliberately process-wide: a question must not go to a collection that another user is
    filling, so the Compare page checks here before sending.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    def busy(self, domain: str | None) -> bool:
        """Whether `domain` is being ingested now."""
        with self._lock:
            return bool(domain) and self._busy.get(domain or "", 0) > 0

    @contextmanager
    def ingesting(self, domain: str) -> Iterator[None]:
        """Mark `domain` busy for the duration of the block."""
        with self._lock:
            self._busy[domain] = self._busy.get(domain, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._busy[domain] -= 1


@st.cache_resource(show_spinner=False)
def ingest_tracker() -> IngestTracker:
    """The process-wide record of domains being ingested."""
    return IngestTracker()


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


def page_start(title: str) -> Settings:
    """What every page does first: the settings (or stop with the fix), the sidebar status, the title."""
    settings = settings_or_stop()
    sidebar_status(settings)
    st.title(title)
    return settings


def sidebar_status(settings: Settings) -> None:
    """Say in the sidebar which endpoints are in use (never keys)."""
    endpoints = dict.fromkeys(spec.endpoint for spec in PIPELINES.values())  # in the registry's order
    with st.sidebar:
        if all(settings.endpoint(e).is_local for e in endpoints):
            st.caption("Running on embedded defaults: local SmolLM2 via llama.cpp, no keys, no internet.")
        else:
            for e in endpoints:
                st.caption(f"**{e}**: {settings.endpoint(e).model}")


def training_queue() -> TrainingQueue:
    """Fine-tuning runs started by the app: one worker process at a time (see training_jobs.py)."""
    return _training_queue(str(app_settings().runs_dir.resolve()))


@st.cache_resource(show_spinner=False)
def _training_queue(runs_dir: str) -> TrainingQueue:
    """One queue per runs folder (the cache key) and process."""
    return TrainingQueue(app_settings())


def start_autotrain() -> None:
    """On the first start: the demo indexes, then each demo domain's missing adapter queued (once per process).

    Only with TRIPTYCH_AUTOTRAIN (default on) and a local fine-tuned endpoint; a wrong configuration
    is left to the page, which says what to fix.
    """
    try:
        settings = app_settings()
        settings.check_keys()
    except ConfigError:
        return
    if not settings.autotrain or not settings.endpoint("finetuned").is_local:
        return
    demo_indexes_ready(settings)
    _autotrain_queued(str(settings.runs_dir.resolve()), str(settings.corpora_dir.resolve()))


@st.cache_resource(show_spinner=False)
def _autotrain_queued(runs_dir: str, corpora_dir: str) -> list[str]:
    """Queue the missing demo adapters once per runs and corpora folder (the cache key); the domains queued."""
    from triptych.ingest import demo_domains

    return training_queue().train_missing(demo_domains(Path(corpora_dir)))
