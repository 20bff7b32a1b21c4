"""Shared fixtures: a clean environment for settings, and the real embedded model server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's AppTest runs a page in-process as `__main__` and leaves it in sys.modules; a process started
    with "spawn" afterwards would re-run that page as its main module. Each test gets pytest's back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TRIPTYCH_* or key variables from the outside (no first-start training), and no .env in the working dir."""
    for name in list(os.environ):
        if name.startswith("TRIPTYCH_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name, raising=False)
    # The app trains missing demo adapters on its first start; a test that wants that turns it on itself.
    monkeypatch.setenv("TRIPTYCH_AUTOTRAIN", "false")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def local_models() -> Iterator[object]:
    """The real embedded llama.cpp server (base model), shared by the integration tests of a session."""
    from triptych.llm.server import LocalModels
    from triptych.settings import Settings

    models = LocalModels(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        models.base()
        yield models
    finally:
        models.close()
