"""The `triptych` command line: serve-model, doctor, ask."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Annotated

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(
    help="Triptych: prompt engineering vs RAG vs fine-tuning, side by side.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _settings():  # type: ignore[no-untyped-def]
    from triptych.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command("serve-model")
def serve_model(
    port: Annotated[int | None, typer.Option(help="Port (default TRIPTYCH_LOCAL_PORT, 0 = free)")] = None,
) -> None:
    """Start the embedded llama.cpp server in the foreground (Ctrl-C stops it)."""
    from triptych.llm.server import LocalModels, ModelServerError

    settings = _settings()
    if port is not None:
        settings = settings.model_copy(update={"local_port": port})
    models = LocalModels(settings)
    try:
        server = models.base()
    except ModelServerError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"serving {server.spec.alias} from {server.spec.model_path}")
    typer.echo(
        f"OpenAI-compatible endpoint: {server.base_url}  (pid {server.pid}, {server.spec.n_threads} threads)"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if not server.is_running():
                raise _fail(f"the model server stopped:\n{server.log_tail()}")
    except KeyboardInterrupt:
        pass
    finally:
        models.close()
        typer.echo("stopped")


@app.command()
def doctor(
    start_local: Annotated[bool, typer.Option(help="Start the local server to check it answers")] = True,
) -> None:
    """Print what is configured, what is reachable, versions, and what to fix."""
    from triptych.doctor import run_checks

    settings = _settings()
    checks = run_checks(settings, start_local=start_local)
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.status]
        color = {"ok": typer.colors.GREEN, "warn": typer.colors.YELLOW, "fail": typer.colors.RED}[
            check.status
        ]
        typer.secho(f"[{mark}] ", fg=color, nl=False)
        typer.echo(f"{check.name.ljust(width)}  {check.detail}")
        if check.fix:
            typer.echo(f"       {' ' * width}  fix: {check.fix}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to ask")],
    stream: Annotated[bool, typer.Option(help="Echo tokens to stderr as they arrive")] = False,
) -> None:
    """Ask the base model (prompt pipeline's endpoint) and print JSON: answer, timings, tokens."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from triptych.llm.factory import make_chat_model, resolve_endpoint
    from triptych.llm.generate import stream_generation
    from triptych.llm.server import LocalModels, ModelServerError
    from triptych.settings import ConfigError

    if not question.strip():
        raise _fail("the question is empty")
    settings = _settings()
    models = LocalModels(settings)
    try:
        endpoint = resolve_endpoint(settings, "prompt", models)
        chat = make_chat_model(endpoint, settings)
        messages = [
            SystemMessage("You are a helpful assistant. Answer briefly and accurately."),
            HumanMessage(question),
        ]
        on_token = (lambda t: print(t, end="", file=sys.stderr, flush=True)) if stream else None
        result = stream_generation(
            chat, messages, endpoint.model, on_token=on_token, usage_counter=endpoint.usage_counter
        )
    except (ConfigError, ModelServerError) as exc:
        raise _fail(str(exc)) from None
    finally:
        models.close()
    if stream:
        print(file=sys.stderr)
    out = result.to_dict()
    out["endpoint"] = endpoint.describe()
    typer.echo(json.dumps(out, indent=2))


if __name__ == "__main__":  # pragma: no cover
    app()
