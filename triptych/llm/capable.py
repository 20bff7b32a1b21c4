"""Endpoints for work the embedded model is too small for: judging answers, writing training questions.

Each such role is configured by three variables, `<VAR>_MODEL` (`provider/model`), `<VAR>_BASE_URL`
and `<VAR>_API_KEY_ENV`, resolved like the pipelines' endpoints: the provider gives the default URL
and key variable, and the OpenAI key is never sent to any host but api.openai.com.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from openai import OpenAI

from triptych.settings import OPENAI_KEY_ENV, PROVIDERS, ConfigError, _dotenv, is_openai_url


@dataclass(frozen=True)
class CapableEndpoint:
    """Where a capable model lives (never holds the key's value in its repr)."""

    base_url: str
    model: str
    key_env: str | None
    role: str  # "the judge", "the question writer": for error messages


def capable_endpoint(
    var: str, model: str | None, base_url: str | None, key_env: str | None, role: str
) -> CapableEndpoint | None:
    """The endpoint configured by `<var>_MODEL` etc.; None when unset; ConfigError naming the variable if wrong."""
    model = (model or "").strip()
    if not model:
        return None
    prefix, _, name = model.partition("/")
    if prefix not in PROVIDERS or prefix == "local":
        raise ConfigError(
            f"{var}_MODEL={model!r}: expected openai/<model>, ollama/<model>, vllm/<model> or "
            f"compatible/<model> (the embedded model is too small to be {role})"
        )
    if not name:
        raise ConfigError(f"{var}_MODEL={model!r} names no model: use {prefix}/<model>")
    provider = PROVIDERS[prefix]
    url = (base_url or provider.base_url or "").rstrip("/")
    if not url:
        raise ConfigError(f"{var}_MODEL={model!r} needs a base URL: set {var}_BASE_URL")
    env = key_env or provider.key_env
    if env == OPENAI_KEY_ENV and not is_openai_url(url):
        raise ConfigError(
            f"{role} endpoint is {url} but its key variable is {OPENAI_KEY_ENV}: the OpenAI key is only "
            f"ever sent to api.openai.com; set {var}_API_KEY_ENV to another variable"
        )
    return CapableEndpoint(url, name, env, role)


def endpoint_key(endpoint: CapableEndpoint) -> str:
    """The API key's value from the environment or .env; ConfigError naming the variable when missing."""
    if endpoint.key_env is None:
        return "no-key-required"
    value = os.environ.get(endpoint.key_env) or _dotenv().get(endpoint.key_env)
    if not value:
        raise ConfigError(f"{endpoint.role} ({endpoint.model}) needs an API key: set {endpoint.key_env}")
    return value


def capable_client(endpoint: CapableEndpoint, timeout_s: float, **client_kwargs: Any) -> OpenAI:
    """An `openai` client for the endpoint (one retry; the caller decides what a failure means)."""
    return OpenAI(
        base_url=endpoint.base_url, api_key=endpoint_key(endpoint), timeout=timeout_s, max_retries=1, **client_kwargs
    )
