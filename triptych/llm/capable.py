"""Endpoints for work the embedded model is too small for: judging answers, writing training questions.

Each such role is configured by three variables, `<VAR>_MODEL` (`provider/model`), `<VAR>_BASE_URL`
and `<VAR>_API_KEY_ENV`, resolved like the pipelines' endpoints: the provider gives the default URL
and key variable, and the OpenAI key is never sent to any host but api.openai.com.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openai import OpenAI

from triptych.settings import ConfigError, EndpointConfig


@dataclass(frozen=True)
class CapableEndpoint:
    """Where a capable model lives: an endpoint configuration and the role it plays (never holds the key)."""

    config: EndpointConfig
    role: str  # "the judge", "the question writer": for error messages

    @property
    def base_url(self) -> str:
        """Where requests go."""
        return self.config.endpoint_url()

    @property
    def model(self) -> str:
        """The model name, without its provider."""
        return self.config.model_name


def capable_endpoint(
    var: str, model: str | None, base_url: str | None, key_env: str | None, role: str
) -> CapableEndpoint | None:
    """The endpoint configured by `<var>_MODEL` etc.; None when unset; ConfigError naming the variable if wrong."""
    model = (model or "").strip()
    if not model:
        return None
    if model.split("/", 1)[0] == "local":
        raise ConfigError(
            f"{var}_MODEL={model!r}: expected openai/<model>, ollama/<model>, vllm/<model> or "
            f"compatible/<model> (the embedded model is too small to be {role})"
        )
    config = EndpointConfig(model=model, base_url=base_url or None, api_key_env=key_env or None)
    try:
        config.check(var, sep="_")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return CapableEndpoint(config, role)


def capable_client(endpoint: CapableEndpoint, timeout_s: float, **client_kwargs: Any) -> OpenAI:
    """An `openai` client for the endpoint (one retry; the caller decides what a failure means)."""
    key = endpoint.config.api_key(f"{endpoint.role} ({endpoint.model})") or "no-key-required"
    return OpenAI(base_url=endpoint.base_url, api_key=key, timeout=timeout_s, max_retries=1, **client_kwargs)
