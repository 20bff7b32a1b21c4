"""What app.py runs before any page: the server's upload limit, and the login gate (refuse an exposed app
without a login, else ask for one).

Streamlit's OIDC login (`st.login`) when `[auth]` is in the secrets; otherwise the shared password
TRIPTYCH_ACCESS_PASSWORD when it is set (on loopback too). On loopback without either, no gate.
"""

from __future__ import annotations

import math
import time

import streamlit as st
from streamlit import config as streamlit_config

from triptych.access import AccessError, access_password, auth_configured, check_exposure, password_matches
from triptych.settings import ConfigError
from triptych.ui import resources

SIGNED_IN = "triptych_signed_in"
WRONG_PASSWORD_DELAY_S = 1.0  # slows guessing down


def require_login() -> None:
    """Return when this visitor may see the app; otherwise show the login (or the refusal) and stop."""
    host = bound_host()
    try:
        password = access_password(resources.app_settings())
    except ConfigError:
        password = None  # the page shows the configuration error; an exposed app is refused below
    oidc = auth_configured(st.secrets)
    try:
        check_exposure(host, password=bool(password), oidc=oidc)
    except AccessError as exc:
        st.error(f"Triptych refuses to serve: {exc}", icon=":material/lock:")
        st.stop()
    if oidc:
        _oidc_gate()
    elif password:
        _password_gate(password)


def apply_upload_limit() -> None:
    """Make the server refuse uploads over TRIPTYCH_MAX_UPLOAD_MB (Streamlit's server.maxUploadSize, in whole MB).

    The upload endpoint reads the option on every request, so setting it here binds the next upload,
    whatever .streamlit/config.toml or a --server.maxUploadSize flag said.
    """
    try:
        limit_mb = max(1, math.ceil(resources.app_settings().max_upload_mb))
    except ConfigError:
        return  # the page shows the configuration error; config.toml's limit stays
    if streamlit_config.get_option("server.maxUploadSize") != limit_mb:
        streamlit_config.set_option("server.maxUploadSize", limit_mb)


def bound_host() -> str | None:
    """The address the Streamlit server listens on (None: every interface).

    `streamlit run` reads .streamlit/config.toml next to app.py, which binds 127.0.0.1; a flag or
    STREAMLIT_SERVER_ADDRESS overrides it. Without a server (AppTest) nothing listens: loopback.
    """
    host = streamlit_config.get_option("server.address")
    if host is None and getattr(streamlit_config, "_main_script_path", None) is None:
        return "127.0.0.1"
    return host


def _oidc_gate() -> None:
    if not st.user.is_logged_in:
        st.title("Triptych")
        st.button("Log in", key="login_oidc", on_click=st.login, type="primary")
        st.stop()
    st.sidebar.button("Log out", key="logout_oidc", on_click=st.logout)


def _password_gate(expected: str) -> None:
    if st.session_state.get(SIGNED_IN):
        return
    st.title("Triptych")
    with st.form("login_form"):
        given = st.text_input("Access password", type="password", key="login_password")
        submitted = st.form_submit_button("Enter", type="primary")
    if submitted:
        if password_matches(given, expected):
            st.session_state[SIGNED_IN] = True
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.error("Wrong password.")
    st.stop()
