"""Where the shared evaluation sets are, and how to read their questions (used by the benchmarks)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DOMAINS = ("finance_tatqa", "general_squad", "legal_cuad", "medical_covidqa", "techdocs_aws")


def shared_eval_dir() -> Path:
    """TRIPTYCH_SHARED_EVAL, else ../shared/eval beside the repository; exits with a message if absent."""
    env = os.environ.get("TRIPTYCH_SHARED_EVAL")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "eval"
    missing = [d for d in DOMAINS if not (path / d / "docs").is_dir()]
    if missing:
        sys.exit(
            f"shared eval sets not found in {path} (missing {', '.join(missing)}): set TRIPTYCH_SHARED_EVAL "
            "to the folder that holds finance_tatqa/, general_squad/, ..."
        )
    return path


def questions(path: Path, domain: str) -> list[dict]:
    """The dev questions of a domain (qa_dev.jsonl)."""
    lines = (path / domain / "qa_dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
