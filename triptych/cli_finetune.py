"""`triptych finetune --domain X [--qa FILE] [--mode with-passages]`, `triptych finetune status`, `... activate RUN`.

Registered on the main app in `triptych/cli.py`.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail
from triptych.settings import ConfigError, Settings

if TYPE_CHECKING:
    from triptych.finetune.with_passages import PassageOptions
    from triptych.qa import QARecord

finetune_app = typer.Typer(
    help="Fine-tune the base model on a domain (local LoRA or a hosted OpenAI job); list and activate runs.",
    invoke_without_command=True,
)


@finetune_app.callback()
def finetune(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option("--domain", "-d", help="The domain to train, e.g. hr_handbook")] = None,
    provider: Annotated[str, typer.Option(help="local (LoRA on this machine) or openai (hosted job)")] = "local",
    epochs: Annotated[int | None, typer.Option(help="Passes over the training set")] = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (0: no limit)")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue an unfinished run from its checkpoint")] = None,
    qa: Annotated[
        Path | None, typer.Option("--qa", help="Train on your own gold questions: a qa.jsonl file", dir_okay=False)
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="With --qa: train on this split's records (and those without one), all of them")
    ] = None,
    evaluate: Annotated[bool, typer.Option(help="Score before and after training")] = True,
    activate: Annotated[bool, typer.Option(help="Make the new run the domain's active one")] = True,
    mode: Annotated[
        str,
        typer.Option(
            help="closed-book (the question alone: the Fine-tuned column) or with-passages (retrieved "
            "passages in each example, RAFT-style: the Fine-tuned + RAG column)"
        ),
    ] = "closed-book",
    passages: Annotated[
        int | None, typer.Option(help="With passages: chunks per example (default TRIPTYCH_TOP_K)", min=1)
    ] = None,
    refusal_share: Annotated[
        float,
        typer.Option(
            help="With passages: share of examples with distractors only, answered 'Not in the documents.'",
            min=0.0,
            max=0.9,
        ),
    ] = 0.1,
) -> None:
    """Train a domain's fine-tuned model: `triptych finetune --domain hr_handbook`."""
    if ctx.invoked_subcommand is not None:
        return
    if not domain:
        typer.echo(ctx.get_help())
        raise _fail("--domain is required (or use `status` / `activate RUN`)")
    settings = _settings()
    if split is not None and qa is None:
        raise _fail("--split picks the records of a --qa file: pass --qa FILE too")
    from triptych.finetune.with_passages import MODES, WITH_PASSAGES, PassageOptions

    if mode not in MODES:
        raise _fail(f"unknown --mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == WITH_PASSAGES and provider != "local":
        raise _fail("--mode with-passages trains a local LoRA adapter: drop --provider or use --provider local")
    options = None
    if mode == WITH_PASSAGES:
        options = PassageOptions(passages=passages or settings.top_k, refusal_share=refusal_share,
                                 seed=seed if seed is not None else settings.finetune_seed,
                                 selection=settings.selection())  # fmt: skip
    if provider == "openai":
        if qa is not None:
            raise _fail("--qa trains a local LoRA run; hosted jobs train on the domain's own QA (drop --qa)")
        _hosted(settings, domain, epochs, seed, activate)
    elif provider == "local":
        records = _qa_records(qa, split) if qa is not None else None
        _local(settings, domain, epochs, rank, lr, max_steps, seed, resume, evaluate, activate, records,
               str(qa) if qa is not None else None, mode, options)  # fmt: skip
    else:
        raise _fail(f"unknown provider {provider!r}; expected local or openai")


def _qa_records(path: Path, split: str | None) -> list[QARecord]:
    """The --qa file's records, checked strictly; every problem is printed with its file:line, then exit 2."""
    from triptych.finetune.dataset import TrainingSetError, records_to_train
    from triptych.qa import QAFormatError, load_qa

    try:
        return records_to_train(load_qa(path, split), split, str(path))
    except QAFormatError as exc:
        count = len(exc.problems)
        raise _fail(f"{path} is not a valid QA file ({count} problem{'s' if count > 1 else ''}):\n  "
                    + "\n  ".join(exc.problems)) from None  # fmt: skip
    except TrainingSetError as exc:
        raise _fail(str(exc)) from None


def _local(
    settings: Settings, domain: str, epochs: int | None, rank: int | None, lr: float | None,
    max_steps: int | None, seed: int | None, resume: str | None, evaluate: bool, activate: bool,
    records: list[QARecord] | None = None, records_from: str | None = None, mode: str = "closed-book",
    options: PassageOptions | None = None,
) -> None:  # fmt: skip
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from triptych.finetune.dataset import TrainingSetError
    from triptych.finetune.runs import run_local
    from triptych.finetune.train import Progress as StepProgress
    from triptych.finetune.train import TrainConfig

    config = TrainConfig.from_settings(settings, mode, epochs=epochs, rank=rank, lr=lr, max_steps=max_steps, seed=seed)
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s  ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{domain}: preparing", total=None, loss="-", tps="-")

        def on_progress(p: StepProgress) -> None:
            bar.update(task, completed=p.step, total=p.total_steps, description=f"{domain}: epoch {p.epoch:.1f}",
                       loss=f"{p.loss:.3f}", tps=f"{p.tokens_per_s:.0f}")  # fmt: skip

        try:
            info = run_local(
                settings, domain, config, run_id=resume, records=records, records_from=records_from,
                evaluate=evaluate, activate=activate, on_progress=on_progress, on_status=console.print, cancel=cancel,
                mode=mode, passage_options=options,
            )  # fmt: skip
        except (TrainingSetError, ConfigError, FileNotFoundError, ValueError) as exc:
            raise _fail(str(exc)) from None
    typer.echo(json.dumps(_summary(info), indent=2))
    if info["status"] == "cancelled":
        typer.secho(f"cancelled: resume with `{info['resume']}`", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130)


def _hosted(settings: Settings, domain: str, epochs: int | None, seed: int | None, activate: bool) -> None:
    from triptych.finetune.hosted import HostedJobError, openai_client, run_openai_job

    try:
        info = run_openai_job(
            settings, domain, openai_client(settings), epochs=epochs, seed=seed, activate=activate,
            on_status=lambda m: typer.echo(m, err=True),
        )  # fmt: skip
    except (ConfigError, HostedJobError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(info, indent=2))


def _summary(info: dict) -> dict:
    keep = ("run_id", "domain", "mode", "status", "device", "training_set", "accuracy_before", "accuracy_after",
            "wall_s", "peak_rss_mib")  # fmt: skip
    out = {k: info[k] for k in keep if k in info}
    if "training" in info:
        out["training"] = {k: v for k, v in info["training"].items() if k != "loss_curve"}
        out["training"]["final_loss"] = info["training"]["loss_curve"][-1] if info["training"]["loss_curve"] else None
    return out


@finetune_app.command("status")
def status(
    output: Annotated[Literal["text", "json"], typer.Option(help="text or json")] = "text",
) -> None:
    """List the runs, marking each domain's active one."""
    from triptych.finetune.registry import list_runs

    runs = list_runs(_settings())
    if output == "json":
        typer.echo(json.dumps([{"run_id": r.run_id, "domain": r.domain, "kind": r.kind, "mode": r.mode,
                                "status": r.status, "active": r.active} for r in runs], indent=2))  # fmt: skip
        return
    if not runs:
        typer.echo("no fine-tuning runs yet: run `triptych finetune --domain NAME`")
        return
    for r in runs:
        after = r.info.get("accuracy_after", {}).get("trained", {})
        score = f"trained contains {after['contains']}%" if after else ""
        model = r.info.get("hosted_model") or ""
        mark = "*" if r.active else " "
        typer.echo(f"{mark} {r.run_id:40} {r.domain:22} {r.kind:6} {r.mode:13} {r.status:10} {score} {model}".rstrip())


@finetune_app.command("activate")
def activate_run(run_id: Annotated[str, typer.Argument(help="The run id (see `triptych finetune status`)")]) -> None:
    """Make a run the active fine-tuned model of its domain."""
    from triptych.finetune.registry import activate, read_run

    settings = _settings()
    info = read_run(settings, run_id)
    if info is None:
        raise _fail(f"no run {run_id!r} under {settings.runs_dir}: see `triptych finetune status`")
    try:
        adapter = activate(settings, str(info["domain"]), run_id)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"active for {adapter.domain} ({adapter.mode}): {run_id}")
