"""Access: the app stays on this machine unless a login guards it; credentials never show up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from graphs.result import PipelineResult
from triptych.access import AccessError, check_exposure, is_loopback, password_matches
from triptych.history import list_history, save_comparison, to_csv, to_html, to_json
from triptych.runstore import mask_url_credentials, settings_snapshot
from triptych.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.1.1", True),
        (None, False),  # unset: Streamlit listens on every interface
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("triptych.example", False),
    ],
)
def test_which_hosts_keep_the_app_on_this_machine(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposed_without_a_login_is_refused_naming_the_fix() -> None:
    with pytest.raises(AccessError) as err:
        check_exposure("0.0.0.0", password=False, oidc=False)
    message = str(err.value)
    assert "0.0.0.0" in message and "TRIPTYCH_ACCESS_PASSWORD" in message and "[auth]" in message
    with pytest.raises(AccessError, match="every network interface"):
        check_exposure(None, password=False, oidc=False)
    check_exposure("0.0.0.0", password=True, oidc=False)  # a shared password is a login
    check_exposure("127.0.0.1", password=False, oidc=False)  # this machine only: no login needed


def test_password_comparison() -> None:
    assert password_matches("correct horse", "correct horse")
    assert not password_matches("correct hors", "correct horse")
    assert not password_matches("", "correct horse")
    assert password_matches("pässwörd", "pässwörd")  # non-ASCII compares as UTF-8 bytes


def _access_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")} | env
    return subprocess.run(
        [sys.executable, "-m", "triptych.access"],
        cwd=tmp_path,
        env=clean | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_demo_start_check(tmp_path: Path) -> None:
    """What `make demo` runs before Streamlit: the host to bind, or a refusal naming the fix."""
    default = _access_check(tmp_path)
    assert default.returncode == 0 and default.stdout.strip() == "127.0.0.1"
    exposed = _access_check(tmp_path, TRIPTYCH_APP_HOST="0.0.0.0")
    assert exposed.returncode == 1 and "TRIPTYCH_ACCESS_PASSWORD" in exposed.stderr
    guarded = _access_check(tmp_path, TRIPTYCH_APP_HOST="0.0.0.0", TRIPTYCH_ACCESS_PASSWORD="s3cret")
    assert guarded.returncode == 0 and guarded.stdout.strip() == "0.0.0.0"


def test_streamlit_config_binds_loopback() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


@pytest.fixture
def bound(request: pytest.FixtureRequest, clean_env: Path) -> Iterator[Path]:
    """The app as if served on the address given by the test's parameter; settings cache cleared."""
    from triptych.ui import resources

    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", request.param)
    resources.app_settings.clear()
    try:
        yield clean_env
    finally:
        streamlit_config.set_option("server.address", before)
        resources.app_settings.clear()


@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_exposed_app_without_login_serves_nothing(bound: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "refuses to serve" in at.error[0].value and "TRIPTYCH_ACCESS_PASSWORD" in at.error[0].value
    assert not at.title  # no page ran


@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_exposed_app_asks_for_the_shared_password(bound: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_ACCESS_PASSWORD", "s3cret")
    monkeypatch.setattr("triptych.ui.login.WRONG_PASSWORD_DELAY_S", 0.0)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Triptych"] and not at.sidebar.caption  # only the login form
    at.text_input(key="login_password").input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password."
    assert not at.sidebar.caption
    at.text_input(key="login_password").input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    assert any("embedded defaults" in c.value for c in at.sidebar.caption)  # the Compare page ran


CREDENTIAL_URL = "https://alice:hunter2@llm.example/v1"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (CREDENTIAL_URL, "https://***@llm.example/v1"),
        ("connect to http://tok3n@10.0.0.5:8000/v1 failed", "connect to http://***@10.0.0.5:8000/v1 failed"),
        ("https://llm.example/v1", "https://llm.example/v1"),
        ("https://llm.example/v1?contact=a@b.example", "https://llm.example/v1?contact=a@b.example"),
        ("mail ops@example.com", "mail ops@example.com"),
    ],
)
def test_url_credentials_are_masked(text: str, masked: str) -> None:
    assert mask_url_credentials(text) == masked


def test_base_url_credentials_never_reach_history_or_exports(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "compatible/llama")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", CREDENTIAL_URL)
    monkeypatch.setenv("TRIPTYCH_ACCESS_PASSWORD", "s3cret")
    settings = Settings(data_dir=clean_env / "data")
    assert settings.rag.base_url == CREDENTIAL_URL
    snapshot = settings_snapshot(settings)
    assert snapshot["rag"]["base_url"] == "https://***@llm.example/v1"
    assert snapshot["access_password"] == "***"
    failed = PipelineResult(pipeline="rag", label="RAG", error=f"Connection error: {CREDENTIAL_URL}/chat/completions")
    save_comparison(settings, "Leave days?", "hr", {"rag": failed})
    saved = (clean_env / "data" / "history").glob("*.json")
    stored = "".join(p.read_text() for p in saved)
    records = list_history(settings)
    for written in (stored, to_json(records), to_csv(records), to_html(records)):
        assert "hunter2" not in written and "s3cret" not in written
        assert "***@llm.example" in written
