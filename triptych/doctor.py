"""`triptych doctor`: what is configured, what is reachable, versions, and what to fix."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from dataclasses import dataclass
from typing import Literal

import httpx

from triptych.runstore import mask_url_credentials
from triptych.settings import PIPELINE_ENDPOINTS, ConfigError, Settings

Status = Literal["ok", "warn", "fail"]

VERSIONED = (
    "triptych", "langchain", "langchain-core", "langgraph", "langchain-openai", "chromadb", "sentence-transformers",
    "streamlit", "openai", "llama-cpp-python", "torch",
)  # fmt: skip


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def check_versions() -> Check:
    """Versions of the packages Triptych is built on; a CUDA torch on a CPU machine is flagged."""
    parts = [f"python {platform.python_version()}"] + [f"{d} {_version(d)}" for d in VERSIONED]
    missing = [d for d in VERSIONED if _version(d) == "not installed"]
    if missing:
        return Check("versions", "fail", ", ".join(parts), f"run `make install` ({', '.join(missing)} missing)")
    return Check("versions", "ok", ", ".join(parts))


def check_endpoint(settings: Settings, pipeline: str) -> Check:
    """Whether a remote endpoint's key is set and its /models answers (local ones are checked apart)."""
    cfg = settings.endpoint(pipeline)
    name = f"endpoint: {pipeline}"
    if cfg.is_local:
        return Check(name, "ok", f"embedded llama.cpp server ({cfg.model})")
    try:
        key = settings.api_key(pipeline)
    except ConfigError as exc:
        return Check(name, "fail", f"{cfg.model}: key missing", str(exc))
    url = cfg.endpoint_url()
    base_url = mask_url_credentials(url)  # what is printed: never a password in a URL
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.get(f"{url}/models", headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        return Check(
            name,
            "fail",
            f"{cfg.model} @ {base_url}: unreachable ({type(exc).__name__})",
            f"start the server at {base_url} or fix TRIPTYCH_{pipeline.upper()}__BASE_URL",
        )
    if resp.status_code in (401, 403):
        return Check(
            name,
            "fail",
            f"{cfg.model} @ {base_url}: key refused ({resp.status_code})",
            f"check the key in {cfg.key_env}",
        )
    if resp.status_code >= 400:
        return Check(name, "warn", f"{cfg.model} @ {base_url}: /models answered {resp.status_code}")
    return Check(name, "ok", f"{cfg.model} @ {base_url} answers")


def check_local_model(settings: Settings, start: bool) -> list[Check]:
    """The GGUF file, and (if asked) a real start of the embedded server."""
    from triptych.llm.server import LocalModels, ModelServerError, gguf_architecture

    models = LocalModels(settings)
    try:
        path = models.model_path()
        arch = gguf_architecture(path)
    except ModelServerError as exc:
        return [Check("local model", "fail", str(exc), "make install, or set TRIPTYCH_LOCAL_MODEL_PATH")]
    checks = [Check("local model", "ok", f"{path.name} ({arch}, {path.stat().st_size / 1e6:.0f} MB)")]
    if not start:
        return checks
    t0 = time.perf_counter()
    try:
        server = models.base()
        served = server.served_models()
        checks.append(
            Check(
                "local server",
                "ok",
                f"ready in {time.perf_counter() - t0:.1f} s on {server.base_url}, serves {served}, "
                f"{settings.local_threads} threads",
            )
        )
    except ModelServerError as exc:
        checks.append(
            Check(
                "local server",
                "fail",
                str(exc).splitlines()[0],
                "see the message above; `triptych serve-model` shows the server's own log",
            )
        )
    finally:
        models.close()
    return checks


def check_embeddings(settings: Settings) -> Check:
    """The embedding model can be found offline."""
    from triptych.embeddings import EmbeddingModelError, resolve_embedding_model

    try:
        where = resolve_embedding_model(settings.embedding_model)
    except EmbeddingModelError as exc:
        return Check("embeddings", "fail", str(exc), "make install")
    return Check("embeddings", "ok", f"{settings.embedding_model} ({where})")


def check_chroma(settings: Settings) -> Check:
    """The embedded index folder is writable, or the Chroma server answers its heartbeat."""
    if settings.chroma_mode == "embedded":
        path = settings.chroma_path.resolve()
        parent = path if path.exists() else path.parent
        if not parent.exists() or not parent.is_dir():
            return Check(
                "chroma",
                "fail",
                f"embedded at {path}: parent folder missing",
                "set TRIPTYCH_CHROMA_PATH to a writable folder",
            )
        return Check("chroma", "ok", f"embedded PersistentClient at {path}")
    url = f"http://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat"
    try:
        httpx.get(url, timeout=3.0).raise_for_status()
    except httpx.HTTPError as exc:
        return Check(
            "chroma",
            "fail",
            f"server {url} unreachable ({type(exc).__name__})",
            "start it with `chroma run --path indexes --port 8000`, or set TRIPTYCH_CHROMA_MODE=embedded",
        )
    return Check("chroma", "ok", f"server at {settings.chroma_host}:{settings.chroma_port} answers")


def run_checks(settings: Settings, start_local: bool = True) -> list[Check]:
    """Every check, in the order a user would fix them."""
    checks = [check_versions()]
    checks += [check_endpoint(settings, p) for p in PIPELINE_ENDPOINTS]
    if any(settings.endpoint(p).is_local for p in PIPELINE_ENDPOINTS):
        checks += check_local_model(settings, start_local)
    checks += [check_embeddings(settings), check_chroma(settings)]
    return checks
