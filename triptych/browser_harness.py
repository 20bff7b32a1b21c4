"""The real app in real headless Chromium, for browser tests and the load benchmark.

`running_app` starts `streamlit run app.py` on a free loopback port with throw-away (or given)
index and data folders and stops it, with its model servers, afterwards; `chromium` opens Debian's
Chromium through Playwright; `select` picks an option of a Streamlit selectbox.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("TRIPTYCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


class AppStartError(RuntimeError):
    """The app did not come up: the message carries its log."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningApp:
    """A started app: its URL, its process, and where its log goes."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        """The end of streamlit's own output."""
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def running_app(
    workdir: Path,
    *,
    chroma_path: Path | None = None,
    data_dir: Path | None = None,
    extra_env: Mapping[str, str] = {},
    startup_s: float = 60,
) -> Iterator[RunningApp]:
    """`streamlit run app.py` on a free port, working in `workdir` (so no developer .env applies).

    Index and data folders default to fresh ones under `workdir` (the demo indexes are then built on
    first start). The whole process group (streamlit and its llama.cpp servers) is stopped after.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_") and not k.endswith("_API_KEY")}
    env |= {
        "TRIPTYCH_CHROMA_PATH": str(chroma_path or workdir / "indexes"),
        "TRIPTYCH_DATA_DIR": str(data_dir or workdir / "data"),
        "TRIPTYCH_CORPORA_DIR": str(REPO / "corpora"),
        "HF_HUB_OFFLINE": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **extra_env,
    }
    log_path = workdir / "streamlit.log"
    log = log_path.open("wb")
    cmd = [str(Path(sys.executable).parent / "streamlit"), "run", str(REPO / "app.py"), "--server.port", str(port),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    app = RunningApp(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise AppStartError(f"streamlit exited with {proc.returncode}:\n{app.log_tail()}")
            try:
                if httpx.get(f"{app.url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AppStartError(f"streamlit did not answer /_stcore/health within {startup_s:.0f} s")
            time.sleep(0.3)
        yield app
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def chromium(pw: Any, profile: Path) -> Any:
    """Debian's Chromium, headless, with a fresh profile (a Playwright persistent context)."""
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1600, "height": 2000},
    )  # fmt: skip


def select(page: Any, label: str, option: str) -> None:
    """Pick `option` in the Streamlit selectbox labelled `label`."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.locator("input").click()
    box.locator("input").fill(option)  # filter first: a long list shows only some of its options
    page.get_by_role("option", name=option, exact=True).first.click()
