"""Who may open the app: loopback by default, any other interface only behind a login.

Streamlit listens on every interface unless told otherwise, so `.streamlit/config.toml` and `make demo`
bind 127.0.0.1. Binding anything else (TRIPTYCH_APP_HOST, or `--server.address`) needs a login: the
shared password TRIPTYCH_ACCESS_PASSWORD, or Streamlit's own OIDC login (`st.login`) configured by an
`[auth]` section in `.streamlit/secrets.toml`. Without one the app refuses to serve, naming the fix.

`python -m triptych.access` checks the configuration and prints the host to bind (what `make demo` runs).
"""

from __future__ import annotations

import hmac
import importlib.util
import ipaddress
import sys
import tomllib
from pathlib import Path
from typing import Any

from triptych.settings import ConfigError, Settings, load_settings

SECRETS_FILE = Path(".streamlit/secrets.toml")


class AccessError(ConfigError):
    """The app would be reachable from the network without a login; the message names the fix."""


def is_loopback(host: str | None) -> bool:
    """Whether binding `host` keeps the app on this machine (unset: Streamlit binds every interface)."""
    if not host or not host.strip():
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name or a socket path: it may be reachable, so it counts as exposed
        return False


def access_password(settings: Settings) -> str | None:
    """TRIPTYCH_ACCESS_PASSWORD's value; None when unset or empty."""
    secret = settings.access_password
    return (secret.get_secret_value() or None) if secret is not None else None


def password_matches(given: str, expected: str) -> bool:
    """Compare a typed password with the configured one in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def auth_configured(secrets: Any) -> bool:
    """Whether Streamlit secrets (a mapping, or `st.secrets`) hold a non-empty `[auth]` section."""
    try:
        section = secrets.get("auth") if secrets is not None else None
    except Exception:  # noqa: BLE001 - st.secrets raises when there is no secrets file at all
        return False
    return bool(section)


def auth_in_secrets_file(path: Path = SECRETS_FILE) -> bool:
    """`auth_configured` for a secrets.toml read from disk (for checks made before Streamlit starts)."""
    try:
        return auth_configured(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def check_exposure(host: str | None, *, password: bool, oidc: bool) -> None:
    """Raise AccessError when `host` is reachable from the network and no login is configured."""
    if oidc and importlib.util.find_spec("authlib") is None:
        raise AccessError(
            "[auth] is configured in .streamlit/secrets.toml but Streamlit's login needs Authlib: "
            "pip install 'Authlib>=1.3.2'"
        )
    if is_loopback(host) or password or oidc:
        return
    where = host.strip() if host and host.strip() else "every network interface (server.address is unset)"
    raise AccessError(
        f"Triptych would listen on {where} without a login: set TRIPTYCH_ACCESS_PASSWORD (a password "
        "shared with the room), or configure [auth] in .streamlit/secrets.toml for Streamlit's OIDC "
        "login, or bind this machine only with TRIPTYCH_APP_HOST=127.0.0.1"
    )


def main() -> int:
    """Check the configured host against the configured login; print the host to bind."""
    try:
        settings = load_settings()
        check_exposure(settings.app_host, password=bool(access_password(settings)), oidc=auth_in_secrets_file())
    except ConfigError as exc:
        print(f"triptych: {exc}", file=sys.stderr)
        return 1
    print(settings.app_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
