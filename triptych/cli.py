"""The `triptych` command line: serve-model, doctor, ask."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from triptych.cli_common import check_keys_for, chosen_pipelines
from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail

if TYPE_CHECKING:
    from graphs.compare import Event
    from graphs.result import PipelineResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(
    help="Triptych: prompt engineering vs RAG vs fine-tuning, side by side.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Documents and indexes: `triptych ingest`, `triptych index list|delete` (in triptych/cli_documents.py).
from triptych.cli_documents import index_app, ingest  # noqa: E402

app.command()(ingest)
app.add_typer(index_app, name="index")

# Fine-tuning: `triptych finetune --domain X`, `finetune status|activate` (in triptych/cli_finetune.py).
from triptych.cli_finetune import finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")

# The stakeholder page: `triptych report --domain D --html out.html` (in triptych/cli_report.py).
from triptych.cli_report import report  # noqa: E402

app.command()(report)

# Evaluation: `triptych eval`, `triptych eval report|compare|list` (in triptych/cli_eval.py).
from triptych.cli_eval import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

# Demo packs: `triptych demo record|show` (in triptych/cli_demo.py).
from triptych.cli_demo import demo_app  # noqa: E402

app.add_typer(demo_app, name="demo")
# Setups: `triptych setup list|show|diff|export|import` (in triptych/cli_setup.py).
from triptych.cli_setup import setup_app, setup_or_exit  # noqa: E402

app.add_typer(setup_app, name="setup")
# Blind votes: `triptych votes [--domain X]`, the leaderboards (in triptych/cli_votes.py).
from triptych.cli_votes import votes  # noqa: E402

app.command()(votes)


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
    typer.echo(f"OpenAI-compatible endpoint: {server.base_url}  (pid {server.pid}, {server.spec.n_threads} threads)")
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
        color = {"ok": typer.colors.GREEN, "warn": typer.colors.YELLOW, "fail": typer.colors.RED}[check.status]
        typer.secho(f"[{mark}] ", fg=color, nl=False)
        typer.echo(f"{check.name.ljust(width)}  {check.detail}")
        if check.fix:
            typer.echo(f"       {' ' * width}  fix: {check.fix}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to ask")],
    domain: Annotated[str | None, typer.Option(help="Document collection / demo domain, e.g. hr_handbook")] = None,
    pipelines: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: prompt,rag,finetuned,finetuned_rag (default: all three with --domain, else prompt)"
        ),
    ] = None,
    as_json: Annotated[
        bool | None,
        typer.Option("--json/--text", help="JSON output (default: JSON unless stdout is a terminal)"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Report each pipeline's progress on stderr")] = True,
    setup: Annotated[str, typer.Option(help="Answer under this setup (`triptych setup list`)")] = "default",
) -> None:
    """Send one question to the pipelines at once; print each answer with sources, timings, tokens, cost."""
    from graphs.compare import Comparison
    from graphs.registry import default_pipelines
    from triptych.llm.server import LocalModels

    if not question.strip():
        raise _fail("the question is empty")
    settings = _settings()
    under = setup_or_exit(settings, setup)
    chosen = chosen_pipelines(pipelines, default_pipelines(settings, domain) if domain else ["prompt"])
    check_keys_for(under.apply(settings), chosen)
    models = LocalModels(settings)
    try:
        results = Comparison(settings, models, setup=under).run(
            question, domain, chosen, on_event=report_event if progress else None
        )
    finally:
        models.close()
    if as_json is None:
        as_json = not sys.stdout.isatty()
    if as_json:
        payload = {
            "question": question,
            "domain": domain,
            "setup": under.ref(),
            "pipelines": {pid: r.to_dict() for pid, r in results.items()},
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"setup {under.name} ({under.hash})")
        print_answers(results.values())
    if any(r.error for r in results.values()):
        raise typer.Exit(1)


def report_event(event: Event) -> None:
    """One line on stderr when a pipeline is queued, starts, or is done."""
    if event.kind in ("queued", "started"):
        typer.echo(f"[{event.pipeline}] {event.kind}", err=True)
    elif event.kind == "done" and event.result is not None:
        r = event.result
        status = f"error: {r.error}" if r.error else f"done in {r.total_s:.2f} s"
        typer.echo(f"[{event.pipeline}] {status}", err=True)


def print_answers(results: Iterable[PipelineResult]) -> None:
    """Each answer as text: the label and model, the answer or error, sources, timings, tokens, cost."""
    for r in results:
        typer.secho(f"\n== {r.label} ({r.model or 'n/a'})", bold=True)
        if r.error:
            typer.secho(f"error: {r.error}", fg=typer.colors.RED)
            continue
        typer.echo(r.answer or f"({r.notice})")
        for src in r.sources:
            typer.echo(f"  [{src.n}] {src.source} (score {src.score:.2f})")
        ttft = f"{r.ttft_s:.2f} s" if r.ttft_s is not None else "-"
        typer.echo(
            f"  ttft {ttft} · total {r.total_s or 0:.2f} s · tokens {r.prompt_tokens or 0}/"
            f"{r.completion_tokens or 0} · ${r.cost_usd:.4f}"
        )


if __name__ == "__main__":  # pragma: no cover
    app()
