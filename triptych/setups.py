"""Setups: named bundles of everything that decides a column's answer, stored as JSON under data_dir/setups/.

A setup holds, for each pipeline, its system prompt (the text itself, not a file path), few-shot
count, endpoint; the generation settings; the retrieval knobs (chunking, embedding model, top k,
minimum score, hybrid, focus, context budget); and which fine-tuning adapter answers. The built-in setup
"default" is today's settings and prompt files. A setup is applied as a copy of the Settings
(`apply`) plus its prompt texts (`prompt_texts`), so its retrieval fields pick their index wherever
the settings decide it. Its `hash` is a digest of its content (not its name), the same whatever the
key order of the file; every comparison, history record and evaluation run records name and hash.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graphs.context import load_prompt
from triptych import runstore
from triptych.settings import PIPELINE_ENDPOINTS, EndpointConfig, Settings

FORMAT = 1
DEFAULT = "default"
SETUPS_DIR = "setups"
VERSIONS_DIR = "versions"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# What each prompt may contain: {name} is filled in when the prompt is used.
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "prompt.system": {"company_role": "the assistant's role, from the domain's name"},
    "rag.system": {"context": "the retrieved passages, numbered [n] (else they go into the user template)"},
    "rag.user": {"question": "the user's question", "context": "the retrieved passages, numbered [n]"},
    "finetuned.system": {},
    "finetuned.rag_system": {"context": "the retrieved passages, numbered [n] (else they go into rag.user)"},
}
# The template names the graphs load (graphs/prompts/<name>.txt) for each prompt of a setup.
TEMPLATE_NAMES = {
    "prompt.system": "prompt_system",
    "rag.system": "rag_system",
    "rag.user": "rag_user",
    "finetuned.system": "finetuned_system",
    "finetuned.rag_system": "finetuned_rag_system",
}


class SetupError(ValueError):
    """A setup is malformed, missing or cannot be saved; the message names the field or the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_template(where: str, text: str) -> None:
    """Refuse an empty prompt or one with a placeholder its pipeline does not fill, naming the allowed ones."""
    if not text.strip():
        raise ValueError(f"{where} is empty: write the prompt, or leave the setting out to use the default")
    allowed = PLACEHOLDERS[where]
    for name in PLACEHOLDER.findall(text):
        if name not in allowed:
            known = ", ".join("{" + a + "}" for a in allowed) or "none"
            raise ValueError(f"{where} has an unknown placeholder {{{name}}}; allowed here: {known}")


class Endpoint(_Strict):
    """Where one pipeline's model lives (as TRIPTYCH_<PIPELINE>__*; API keys stay in the environment)."""

    model: str = "local"
    base_url: str | None = None
    api_key_env: str | None = None
    price_in_per_1k: float = Field(default=0.0, ge=0)
    price_out_per_1k: float = Field(default=0.0, ge=0)

    def config(self) -> EndpointConfig:
        """As the settings hold it."""
        return EndpointConfig(**self.model_dump())


class PromptColumn(_Strict):
    """The prompt pipeline: its endpoint, system prompt and how many of the domain's training Q&A it shows."""

    endpoint: Endpoint = Endpoint()
    system: str
    few_shot: int = Field(default=3, ge=0, le=10, description="Examples from the domain's training Q&A.")

    @model_validator(mode="after")
    def _check(self) -> PromptColumn:
        check_template("prompt.system", self.system)
        return self


class RagColumn(_Strict):
    """The RAG pipeline: its endpoint, system prompt and the user turn around the passages."""

    endpoint: Endpoint = Endpoint()
    system: str
    user: str

    @model_validator(mode="after")
    def _check(self) -> RagColumn:
        check_template("rag.system", self.system)
        check_template("rag.user", self.user)
        if "{context}" not in self.system and "{context}" not in self.user:
            raise ValueError(
                "rag: neither the system prompt nor the user template has {context}: without it the "
                "retrieved passages never reach the model; put {context} where they belong"
            )
        return self


class FinetunedColumn(_Strict):
    """The fine-tuned pipelines: endpoint, prompts, and which adapter ('' = the domain's active one)."""

    endpoint: Endpoint = Endpoint()
    system: str
    rag_system: str
    adapter: str = Field(default="", description="A fine-tuning run id; '': the domain's active adapter.")

    @model_validator(mode="after")
    def _check(self) -> FinetunedColumn:
        check_template("finetuned.system", self.system)
        check_template("finetuned.rag_system", self.rag_system)
        return self


class Generation(_Strict):
    """How every pipeline's model generates."""

    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0, le=2)


class Retrieval(_Strict):
    """How the documents are chunked, embedded, searched and cut down to what the model reads."""

    chunk_size: int = Field(default=160, ge=16)
    chunk_overlap: int = Field(default=24, ge=0)
    embedding_model: str = "all-MiniLM-L6-v2"
    top_k: int = Field(default=8, ge=1, le=50)
    min_score: float = Field(default=0.25, ge=-1, le=1)
    hybrid: bool = True
    focus_chunks: int = Field(default=2, ge=0, le=49)
    context_budget_tokens: int = Field(default=160, ge=0, le=8192)
    context_window: int = Field(default=0, ge=0, le=10)
    context_titles: bool = True

    @model_validator(mode="after")
    def _check(self) -> Retrieval:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"retrieval.chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size")
        return self


class Setup(_Strict):
    """One named setup (see the module docstring); validated on creation, unknown fields refused."""

    format: Literal[1] = FORMAT
    name: str
    description: str = ""
    generation: Generation = Generation()
    prompt: PromptColumn
    rag: RagColumn
    finetuned: FinetunedColumn
    retrieval: Retrieval = Retrieval()

    @model_validator(mode="after")
    def _check(self) -> Setup:
        check_name(self.name)
        for pipeline in PIPELINE_ENDPOINTS:
            getattr(self, pipeline).endpoint.config().check(f"{pipeline}.endpoint", sep=".")
        return self

    # --- content and identity ---------------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        """What decides the answers: everything but the name and description."""
        return self.model_dump(mode="json", exclude={"name", "description"})

    @property
    def hash(self) -> str:
        """A digest of the content (12 hex digits), the same whatever the order of the keys in the file."""
        return digest(self.content())

    def ref(self) -> dict[str, str]:
        """How records name it: name and content hash."""
        return {"name": self.name, "hash": self.hash}

    def to_json(self) -> str:
        """The file's text: indented JSON, keys sorted, so two setups diff line by line."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def renamed(self, name: str, description: str | None = None) -> Setup:
        """The same content under another name."""
        data = self.model_dump(mode="json") | {"name": name}
        if description is not None:
            data["description"] = description
        return parse(data)

    def edited(self, changes: dict[str, Any]) -> Setup:
        """A copy with dotted fields changed (`{"rag.system": "...", "retrieval.top_k": 4}`), validated."""
        data = self.model_dump(mode="json")
        for dotted, value in changes.items():
            *path, last = dotted.split(".")
            node = data
            for part in path:
                node = node[part]
            if last not in node:
                raise SetupError(f"unknown field {dotted!r}")
            node[last] = value
        return parse(data)

    # --- applying it --------------------------------------------------------------------------------

    def apply(self, settings: Settings) -> Settings:
        """The settings with this setup's endpoints, generation and retrieval fields (a copy)."""
        update: dict[str, Any] = {p: getattr(self, p).endpoint.config() for p in PIPELINE_ENDPOINTS}
        update |= self.generation.model_dump() | self.retrieval.model_dump()
        return settings.model_copy(update=update)

    def prompt_texts(self) -> dict[str, str]:
        """The prompt texts by template name (prompt_system, rag_system, rag_user...), as the graphs load them."""
        return {name: self.field(where) for where, name in TEMPLATE_NAMES.items()}

    def field(self, dotted: str) -> Any:
        """One field by its dotted name ('rag.user', 'retrieval.top_k')."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node

    def column_part(self, pipeline: str) -> dict[str, Any]:
        """The part of the content that decides pipeline `pipeline`'s answer (its prompts, endpoint, retrieval...)."""
        content = self.content()
        part: dict[str, Any] = {"generation": content["generation"]}
        if pipeline == "prompt":
            part["prompt"] = content["prompt"]
        elif pipeline == "rag":
            part |= {"rag": content["rag"], "retrieval": content["retrieval"]}
        elif pipeline == "finetuned":
            ft = content["finetuned"]
            part["finetuned"] = {k: ft[k] for k in ("endpoint", "system", "adapter")}
        elif pipeline == "finetuned_rag":
            ft = content["finetuned"]
            part["finetuned"] = {k: ft[k] for k in ("endpoint", "rag_system", "adapter")}
            part |= {"rag_user": content["rag"]["user"], "retrieval": content["retrieval"]}
        else:
            raise SetupError(f"unknown pipeline {pipeline!r}")
        return part

    def column_hash(self, pipeline: str) -> str:
        """A digest of `column_part(pipeline)`: equal for two setups that give that column the same answer."""
        return digest(self.column_part(pipeline))


def digest(content: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces), 12 hex digits."""
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def check_name(name: str) -> None:
    """A setup name is a file name: letters, digits, '_', '.', '-', at most 64, starting with a letter or digit."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"setup name {name!r} is not allowed: use letters, digits, '_', '.' or '-' (at most 64, "
            "starting with a letter or digit)"
        )


def describe_errors(exc: ValidationError, source: str = "setup") -> str:
    """Pydantic's errors as lines naming each field: 'unknown field rag.topk', 'rag: ... {context} ...'."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown field {loc!r}")
        elif err["type"] == "missing":
            lines.append(f"missing field {loc!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(msg if not loc or msg.startswith(loc.split(".")[0]) else f"{loc}: {msg}")
    return f"{source}: " + "; ".join(lines)


def parse(data: Any, source: str = "setup") -> Setup:
    """A Setup from plain data, or SetupError naming every wrong field."""
    if not isinstance(data, dict):
        raise SetupError(f"{source}: expected a JSON object, got {type(data).__name__}")
    try:
        return Setup.model_validate(data)
    except ValidationError as exc:
        raise SetupError(describe_errors(exc, source)) from None


def parse_text(text: str, source: str = "setup") -> Setup:
    """A Setup from a file's JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SetupError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse(data, source)


# --- the built-in default and the stored ones ----------------------------------------------------------


def default_setup(settings: Settings) -> Setup:
    """The built-in setup: today's settings (endpoints, generation, retrieval) and prompt files."""

    def endpoint(pipeline: str) -> dict[str, Any]:
        return settings.endpoint(pipeline).model_dump(include=set(Endpoint.model_fields))

    def text(where: str) -> str:
        return load_prompt(TEMPLATE_NAMES[where], settings.prompts_dir)

    retrieval = {k: getattr(settings, k) for k in Retrieval.model_fields}
    return parse({
        "name": DEFAULT,
        "description": "Today's settings and prompt files.",
        "generation": {"max_tokens": settings.max_tokens, "temperature": settings.temperature},
        "prompt": {"endpoint": endpoint("prompt"), "system": text("prompt.system")},
        "rag": {"endpoint": endpoint("rag"), "system": text("rag.system"), "user": text("rag.user")},
        "finetuned": {"endpoint": endpoint("finetuned"), "system": text("finetuned.system"),
                      "rag_system": text("finetuned.rag_system")},
        "retrieval": retrieval,
    }, "the built-in default setup")  # fmt: skip


def setups_dir(settings: Settings) -> Path:
    """Where saved setups are kept: data_dir/setups/<name>.json (earlier versions under versions/)."""
    return settings.data_dir / SETUPS_DIR


def setup_names(settings: Settings) -> list[str]:
    """'default' first, then the saved setups by name."""
    folder = setups_dir(settings)
    saved = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [DEFAULT, *[n for n in saved if n != DEFAULT]]


def load_setup(settings: Settings, name: str) -> Setup:
    """A setup by name ('default' is built in); SetupError naming the known ones when there is none."""
    if name == DEFAULT:
        return default_setup(settings)
    check_name(name)
    path = setups_dir(settings) / f"{name}.json"
    if not path.is_file():
        raise SetupError(f"no setup {name!r}; known: {', '.join(setup_names(settings))} (`triptych setup list`)")
    setup = parse_text(path.read_text(encoding="utf-8"), str(path))
    if setup.name != name:
        raise SetupError(f"{path} names itself {setup.name!r}: rename the file or the setup so they agree")
    return setup


def save_setup(settings: Settings, setup: Setup, *, overwrite: bool = False) -> Path:
    """Write a setup to data_dir/setups/<name>.json (atomically); the version it replaces is kept under versions/.

    Refuses the name 'default' (built in) and, unless `overwrite`, an existing name holding other content.
    """
    if setup.name == DEFAULT:
        raise SetupError("'default' is the built-in setup: save under another name")
    path = setups_dir(settings) / f"{setup.name}.json"
    if path.is_file():
        old = load_setup(settings, setup.name)
        if old.hash != setup.hash:
            if not overwrite:
                raise SetupError(
                    f"a setup {setup.name!r} with other content exists (hash {old.hash}): pick another name, "
                    "or overwrite it (its version is kept)"
                )
            kept = setups_dir(settings) / VERSIONS_DIR / f"{old.name}.{old.hash}.json"
            runstore.write_json(kept, old.model_dump(mode="json"), sort_keys=True)
    runstore.write_json(path, setup.model_dump(mode="json"), sort_keys=True)
    return path


# --- comparing two setups -----------------------------------------------------------------------------


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def diff(a: Setup, b: Setup) -> list[str]:
    """What differs between two setups' content, field by field; prompt texts as unified diffs."""
    fa, fb = _flatten(a.content()), _flatten(b.content())
    lines: list[str] = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key), fb.get(key)
        if va == vb:
            continue
        if isinstance(va, str) and isinstance(vb, str) and ("\n" in va or "\n" in vb or len(va) > 60):
            lines.append(f"{key}:")
            body = difflib.unified_diff(va.splitlines(), vb.splitlines(), a.name, b.name, lineterm="", n=1)
            lines += [f"  {line}" for line in body]
        else:
            lines.append(f"{key}: {json.dumps(va)} -> {json.dumps(vb)}")
    return lines
