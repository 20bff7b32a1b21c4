"""Demo packs: recorded comparisons (answers, sources, the time of every token) in one JSON file.

A pack is what `triptych demo record` writes and the app's Replay page plays back, so a demo runs
without the model, the network or the keys, and can be sent to a colleague. The file reads

    {"format": "triptych-demo-pack", "version": 1, "checksum": "sha256:<hex>", "pack": {...}}

where the checksum covers the canonical JSON of `pack` (sorted keys, no spaces): a pack edited by
hand no longer matches and is refused, as is a format version this Triptych does not know. The
checksum shows a change, it does not prove who made the pack. `pack` holds the settings it was
recorded with (masked as on the Settings page: key *variable names*, never keys), the models and
the kind of machine (system and CPU count, never its name), which the timings depend on.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphs.result import PipelineResult
from triptych import __version__, runstore
from triptych.settings import PIPELINE_ENDPOINTS, Settings, _dotenv

FORMAT = "triptych-demo-pack"
VERSION = 1
SUFFIX = ".json"
SHIPPED_NAME = "demo_pack.json"  # corpora/<domain>/demo_pack.json: a pack in the repo, recorded from the real model
EVENT_KINDS = ("queued", "started", "token", "done")


class PackError(ValueError):
    """A file is not a demo pack this Triptych can play; the message says why and what to do."""


@dataclass(frozen=True)
class TimedEvent:
    """One pipeline event of a recorded comparison, `t` seconds after the comparison started."""

    t: float
    pipeline: str
    kind: str  # queued, started, token, done
    text: str = ""

    def to_list(self) -> list[Any]:
        """Compact JSON form: [t, pipeline, kind, text]."""
        return [self.t, self.pipeline, self.kind, self.text]


@dataclass
class RecordedComparison:
    """One question as it was answered: the final results and every event with its time."""

    question: str
    domain: str | None
    pipelines: list[str]
    results: dict[str, PipelineResult]
    events: list[TimedEvent]
    gold_answers: list[str] = field(default_factory=list)
    recorded_at: str = ""

    @property
    def duration_s(self) -> float:
        """Seconds from the start to the last event."""
        return max((e.t for e in self.events), default=0.0)

    def tokens(self, pipeline: str) -> list[TimedEvent]:
        """The token events of one pipeline, in order."""
        return [e for e in self.events if e.pipeline == pipeline and e.kind == "token"]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (URL credentials masked, as in the history: an error may quote a base URL)."""
        return runstore.mask_credentials_in(
            {
                "question": self.question,
                "domain": self.domain,
                "pipelines": list(self.pipelines),
                "gold_answers": list(self.gold_answers),
                "recorded_at": self.recorded_at,
                "results": {pid: r.to_dict() for pid, r in self.results.items()},
                "events": [e.to_list() for e in self.events],
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedComparison:
        """Rebuild from `to_dict` output; KeyError/TypeError/ValueError on a malformed entry."""
        pipelines = [str(p) for p in data["pipelines"]]
        results = {str(pid): PipelineResult.from_dict(r) for pid, r in data["results"].items()}
        if set(results) != set(pipelines):
            raise ValueError(f"results for {sorted(results)} but pipelines {pipelines}")
        events = []
        for t, pipeline, kind, text in data["events"]:
            if kind not in EVENT_KINDS or pipeline not in results:
                raise ValueError(f"unknown event {kind!r} of {pipeline!r}")
            events.append(TimedEvent(float(t), str(pipeline), str(kind), str(text)))
        return cls(
            question=str(data["question"]),
            domain=data.get("domain"),
            pipelines=pipelines,
            results=results,
            events=events,
            gold_answers=[str(g) for g in data.get("gold_answers") or []],
            recorded_at=str(data.get("recorded_at") or ""),
        )


@dataclass
class DemoPack:
    """Recorded comparisons with what they were made with."""

    comparisons: list[RecordedComparison]
    domain: str | None = None
    created_at: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # masked snapshot (runstore.settings_snapshot)
    models: dict[str, list[str]] = field(default_factory=dict)  # pipeline -> the models that answered
    triptych_version: str = __version__
    machine: str = ""  # what it was recorded on (the timings depend on it), e.g. "Linux x86_64, 2 CPU cores"

    @classmethod
    def made_with(cls, settings: Settings, comparisons: list[RecordedComparison], domain: str | None) -> DemoPack:
        """A new pack of `comparisons`, with the masked settings and the models that answered."""
        models: dict[str, list[str]] = {}
        for comp in comparisons:
            for pid, result in comp.results.items():
                if result.model and result.model not in models.setdefault(pid, []):
                    models[pid].append(result.model)
        return cls(
            comparisons=comparisons,
            domain=domain,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            settings=runstore.settings_snapshot(settings),
            models=models,
            machine=this_machine(),
        )

    def body(self) -> dict[str, Any]:
        """The checksummed part of the file."""
        return {
            "triptych_version": self.triptych_version,
            "created_at": self.created_at,
            "domain": self.domain,
            "settings": self.settings,
            "models": self.models,
            "machine": self.machine,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DemoPack:
        """Rebuild from `body()`; KeyError/TypeError/ValueError on a malformed entry."""
        return cls(
            comparisons=[RecordedComparison.from_dict(c) for c in body["comparisons"]],
            domain=body.get("domain"),
            created_at=str(body.get("created_at") or ""),
            settings=dict(body.get("settings") or {}),
            models={str(k): [str(m) for m in v] for k, v in (body.get("models") or {}).items()},
            triptych_version=str(body.get("triptych_version") or ""),
            machine=str(body.get("machine") or ""),
        )

    def describe_models(self) -> str:
        """'prompt: m1 · rag: m1, m2' (or 'no model answered')."""
        return " · ".join(f"{pid}: {', '.join(ms)}" for pid, ms in self.models.items()) or "no model answered"


def this_machine() -> str:
    """'Linux x86_64, 2 CPU cores': enough to read the recorded timings by, nothing that names the machine."""
    return f"{platform.system() or 'unknown system'} {platform.machine()}, {os.cpu_count() or '?'} CPU cores"


def checksum(body: Mapping[str, Any]) -> str:
    """'sha256:<hex>' of the canonical JSON of `body`."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_file_dict(pack: DemoPack, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The whole file as JSON-able data; each of `secrets` that occurs anywhere in it is masked first."""
    body = _without(pack.body(), [s for s in secrets if len(s) >= 4])
    return {"format": FORMAT, "version": VERSION, "checksum": checksum(body), "pack": body}


def write_pack(pack: DemoPack, path: Path, secrets: Iterable[str] = ()) -> Path:
    """Write the pack atomically; returns `path`."""
    return runstore.write_json(path, to_file_dict(pack, secrets))


def loads(data: bytes | str, name: str = "the pack") -> DemoPack:
    """Read a pack; PackError (naming `name`) unless it is an unchanged pack of a known format version."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{name} is not a Triptych demo pack: it is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PackError(f"{name} is not a Triptych demo pack (record one with `triptych demo record --domain D`)")
    version = doc.get("version")
    if version != VERSION:
        raise PackError(
            f"{name} is a demo pack of format version {version!r}, which this Triptych ({__version__}) cannot play: "
            f"it reads version {VERSION}. Update Triptych, or record the pack again with `triptych demo record`."
        )
    body = doc.get("pack")
    try:
        unchanged = isinstance(body, dict) and doc.get("checksum") == checksum(body)
    except ValueError:  # NaN or Infinity written into it: never in a recorded pack
        unchanged = False
    if not unchanged:
        raise PackError(
            f"{name} was changed after recording (its checksum does not match its content), so it is refused: "
            "a replay must show what the models really said. Record it again with `triptych demo record`."
        )
    try:
        return DemoPack.from_body(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PackError(f"{name} is a damaged demo pack ({type(exc).__name__}: {exc}); record it again") from None


def read_pack(path: Path) -> DemoPack:
    """Read a pack file; PackError naming the file and what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads(data, path.name)


def packs_dir(settings: Settings) -> Path:
    """Where packs are written by default and listed by the Replay page: <data_dir>/packs."""
    return settings.data_dir / "packs"


def list_packs(settings: Settings) -> list[Path]:
    """The pack files in the packs folder, newest first."""
    folder = packs_dir(settings)
    files = folder.glob(f"*{SUFFIX}") if folder.is_dir() else []
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def shipped_packs(settings: Settings) -> list[Path]:
    """The packs shipped with the demo corpora (<corpora dir>/<domain>/demo_pack.json), by domain.

    Read-only: they are played from where they are, never copied into the packs folder, changed or deleted.
    """
    folder = settings.corpora_dir
    return sorted(folder.glob(f"*/{SHIPPED_NAME}")) if folder.is_dir() else []


def is_shipped(settings: Settings, path: Path) -> bool:
    """Whether `path` is one of the packs shipped with the demo corpora."""
    return path.resolve() in {p.resolve() for p in shipped_packs(settings)}


@dataclass(frozen=True)
class PackFile:
    """A pack the Replay page offers: one the user recorded (packs folder) or one shipped with a demo corpus."""

    path: Path
    shipped: bool = False

    @property
    def label(self) -> str:
        """The file name; a shipped pack's names its domain and says it is shipped (no user file is named so)."""
        return f"{self.path.parent.name}/{self.path.name} (shipped with Triptych)" if self.shipped else self.path.name


def available_packs(settings: Settings) -> list[PackFile]:
    """The user's packs, newest first, then the shipped ones."""
    return [PackFile(p) for p in list_packs(settings)] + [PackFile(p, shipped=True) for p in shipped_packs(settings)]


def shipped_mark(pack: DemoPack) -> str:
    """'shipped with Triptych, recorded 2025-11-30 on Linux x86_64, 2 CPU cores (prompt: m · rag: m)'."""
    when = pack.created_at[:10] or "on an unknown date"
    on = f" on {pack.machine}" if pack.machine else ""
    return f"shipped with Triptych, recorded {when}{on} ({pack.describe_models()})"


def key_values(settings: Settings) -> list[str]:
    """The values of the API keys the endpoints read (environment or `.env`): never written into a pack."""
    names = {settings.endpoint(p).key_env for p in PIPELINE_ENDPOINTS} | {"OPENAI_API_KEY", settings.judge_api_key_env}
    names |= {n for n in os.environ if n.endswith("_API_KEY")}
    dotenv = _dotenv()
    values = [os.environ.get(n) or dotenv.get(n) for n in names if n]
    if settings.access_password is not None:
        values.append(settings.access_password.get_secret_value())
    return [v for v in values if v]


def _without(value: Any, secrets: Sequence[str]) -> Any:
    """`value` (JSON-like) with every occurrence of each secret in its strings replaced by the mask."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, runstore.MASK)
        return value
    if isinstance(value, Mapping):
        return {k: _without(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, secrets) for v in value]
    return value
