"""What every kind of run on disk shares: atomic JSON files, run ids, the settings snapshot.

Used by the comparison history (`history.py`), evaluation runs (`evaluate/store.py`) and fine-tuning
runs (`finetune/registry.py`).

Run ids read `<UTC yyyymmdd-HHMMSS>-<name>` (e.g. `20261122-143501-hr_handbook`), so they sort by
time. Ids written before this format stay readable: evaluation runs were `<name>-<time>` and
comparisons `<yyyymmddTHHMMSSZ>-<hex>`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triptych.settings import Settings

_STAMP = "%Y%m%d-%H%M%S"
_NAME = r"[A-Za-z0-9_.][A-Za-z0-9_.-]*"
_FORMATS = (
    re.compile(rf"^(?P<date>\d{{8}})-(?P<time>\d{{6}})-(?P<name>{_NAME})$"),  # current
    re.compile(rf"^(?P<name>{_NAME})-(?P<date>\d{{8}})-(?P<time>\d{{6}})(?:-\d+)?$"),  # evaluation runs before
    re.compile(r"^(?P<date>\d{8})T(?P<time>\d{6})Z-(?P<name>[0-9a-f]{8})$"),  # comparisons before
)

# A settings field whose name holds one of these words is masked in snapshots, unless the name ends
# in `_env` (then it holds the *name* of a variable, never its value).
SECRET_WORDS = ("key", "secret", "password", "token_value")
MASK = "***"


def write_json(path: Path, obj: Any, **dump_kwargs: Any) -> Path:
    """Write JSON atomically (a reader never sees half a file); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, **({"indent": 2, "ensure_ascii": False} | dump_kwargs))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))


def new_run_id(name: str, root: Path | None = None, now: datetime | None = None, *, claim: bool = False) -> str:
    """`<UTC time>-<name>`; with `root`, a `-2`, `-3`... suffix while `root` holds that run (folder or .json).

    With `claim`, the run's folder `root/<id>` is created here, atomically: two processes starting a run of
    the same name in the same second get two ids, never one folder between them.
    """
    base = f"{(now or datetime.now(UTC)):{_STAMP}}-{name}"

    def taken(run_id: str) -> bool:
        if root is None:
            return False
        if (root / f"{run_id}.json").exists():
            return True
        if not claim:
            return (root / run_id).exists()
        root.mkdir(parents=True, exist_ok=True)
        try:
            (root / run_id).mkdir()
        except FileExistsError:
            return True
        return False

    run_id, n = base, 1
    while taken(run_id):
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@dataclass(frozen=True)
class RunId:
    """A run id taken apart: when the run was created and what it names (a domain, a random suffix)."""

    created: datetime
    name: str


def parse_run_id(text: str) -> RunId | None:
    """The parts of a run id in the current or an earlier format; None if `text` is not a run id."""
    for pattern in _FORMATS:
        if m := pattern.match(text):
            try:
                created = datetime.strptime(f"{m['date']}-{m['time']}", _STAMP).replace(tzinfo=UTC)
            except ValueError:
                continue
            return RunId(created, m["name"])
    return None


def is_secret_field(name: str) -> bool:
    """Whether a settings field's value must never be written down."""
    lower = name.lower()
    return any(w in lower for w in SECRET_WORDS) and not lower.endswith("_env")


# `scheme://user:password@` (or a token as the user name) in a URL anywhere in a string.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")


def mask_url_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it masked: `https://***@host/v1`."""
    return _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)


def mask_credentials_in(value: Any) -> Any:
    """`value` (JSON-like) with URL credentials masked in every string, keys left as they are."""
    if isinstance(value, str):
        return mask_url_credentials(value)
    if isinstance(value, Mapping):
        return {k: mask_credentials_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_credentials_in(v) for v in value]
    return value


def mask_secrets(value: Any) -> Any:
    """`value` with every secret-looking mapping entry that holds something replaced by MASK, and URL credentials."""
    if isinstance(value, Mapping):
        return {k: MASK if is_secret_field(str(k)) and v else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return mask_credentials_in(value)


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings that shaped a run, as JSON-able values; secrets masked, key *variable names* kept."""
    return mask_secrets(settings.model_dump(mode="json"))
