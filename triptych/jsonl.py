"""Reading JSON-lines files (QA sets, training sets, evaluation answers): one object a line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: Path, error: Callable[[str], Exception] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of `path`.

    A line that is not JSON raises `error("<path>:<n>: not JSON (<reason>)")`; with no `error` it is
    skipped (an append-only log whose last line was torn by a crash).
    """
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            if error is not None:
                raise error(f"{path}:{n}: not JSON ({exc.msg})") from None
