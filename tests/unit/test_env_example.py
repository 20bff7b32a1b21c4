"""`.env.example` documents every setting, so it cannot drift from the settings class."""

from __future__ import annotations

import re
from pathlib import Path

from triptych.settings import EndpointConfig, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def documented() -> set[str]:
    return set(re.findall(r"^#?\s*(TRIPTYCH_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))


def test_every_setting_is_in_env_example() -> None:
    expected = set()
    for name in Settings.model_fields:
        if name in ("prompt", "rag", "finetuned"):
            expected |= {f"TRIPTYCH_{name.upper()}__{f.upper()}" for f in EndpointConfig.model_fields}
        else:
            expected.add(f"TRIPTYCH_{name.upper()}")
    missing = expected - documented()
    assert not missing, f"add these to .env.example: {sorted(missing)}"


def test_env_example_names_only_real_settings() -> None:
    names = {f"TRIPTYCH_{n.upper()}" for n in Settings.model_fields}
    unknown = {v for v in documented() if v.split("__")[0] not in names}
    assert not unknown, f".env.example documents settings that do not exist: {sorted(unknown)}"
