"""The original files of ingested documents, kept by content hash under the data directory.

`<TRIPTYCH_DATA_DIR>/originals/<domain>/<sha256><ext>`: the bytes as uploaded (or ingested from the
command line), so that a domain built from uploads can be fine-tuned, and re-indexed, without the
user's copy. The catalog record of each document names its file (`DocumentRecord.original`) and
keeps its display name (`source`); the same bytes uploaded twice are stored once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath

from triptych.settings import Settings


def originals_dir(settings: Settings, domain: str) -> Path:
    """Where a domain's originals are kept."""
    return settings.data_dir / "originals" / domain


def original_name(content_hash: str, source: str) -> str:
    """The stored file's name: the content hash, with the display name's extension (lower case)."""
    return content_hash + PurePath(source).suffix.lower()


def keep_original(folder: Path, content_hash: str, source: str, data: bytes) -> tuple[str, bool]:
    """Store the bytes once (atomically: a crash never leaves half a file); returns (name, newly written)."""
    name = original_name(content_hash, source)
    path = folder / name
    if path.is_file():
        return name, False
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name, True


def discard_original(folder: Path, name: str) -> bool:
    """Delete a kept original; False when it was not there."""
    if not name or PurePath(name).name != name:  # only ever a plain file name inside the folder
        return False
    try:
        (folder / name).unlink()
    except FileNotFoundError:
        return False
    return True
