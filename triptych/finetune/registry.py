"""Which fine-tuned adapter is active per domain.

Layout under TRIPTYCH_DATA_DIR/runs: one folder per training run (holding `adapter.gguf` for the
embedded server), and `active.json` mapping each domain to its active run id.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from triptych.settings import Settings

ACTIVE_FILE = "active.json"
ADAPTER_FILE = "adapter.gguf"


@dataclass(frozen=True)
class ActiveAdapter:
    """The adapter the fine-tuned column uses for a domain."""

    domain: str
    run_id: str
    gguf_path: Path

    @property
    def alias(self) -> str:
        """The model name the embedded server serves it under."""
        return f"ft-{self.domain}-{self.run_id}"


def _active_map(runs_dir: Path) -> dict[str, str]:
    path = runs_dir / ACTIVE_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def active_adapter(settings: Settings, domain: str) -> ActiveAdapter | None:
    """The active adapter of a domain, or None when none was trained and activated."""
    run_id = _active_map(settings.runs_dir).get(domain)
    if run_id is None:
        return None
    path = settings.runs_dir / run_id / ADAPTER_FILE
    return ActiveAdapter(domain, run_id, path) if path.is_file() else None


def activate(settings: Settings, domain: str, run_id: str) -> ActiveAdapter:
    """Make a run's adapter the domain's active one (written atomically)."""
    path = settings.runs_dir / run_id / ADAPTER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"run {run_id!r} has no {ADAPTER_FILE} under {settings.runs_dir}")
    mapping = _active_map(settings.runs_dir) | {domain: run_id}
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.runs_dir, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(mapping, fh, indent=2, sort_keys=True)
    os.replace(tmp, settings.runs_dir / ACTIVE_FILE)
    return ActiveAdapter(domain, run_id, path)
