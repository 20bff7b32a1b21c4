"""`triptych demo record|show`: record comparisons into a demo pack, and check what a pack holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triptych.cli_common import check_keys_for, chosen_pipelines
from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail

if TYPE_CHECKING:
    from graphs.result import PipelineResult
    from triptych.demo_pack import DemoPack, RecordedComparison
    from triptych.demo_record import QuestionToRecord
    from triptych.settings import Settings

demo_app = typer.Typer(
    help="Demo packs: record comparisons with the timing of every token, to replay them without the model.",
    no_args_is_help=True,
)


@demo_app.command("record")
def record(
    domain: Annotated[str, typer.Option("--domain", "-d", help="The domain to ask about, e.g. hr_handbook")],
    questions: Annotated[
        Path | None,
        typer.Option(
            help="Questions: a QA .jsonl file or a text file, one question a line (default: the domain's "
            "test-split preset questions)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    pipelines: Annotated[
        str | None, typer.Option(help="Comma-separated pipeline ids (default: prompt,rag,finetuned)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Record at most this many questions")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Pack file (default: <data dir>/packs/<time>-<domain>.json)")
    ] = None,
) -> None:
    """Run questions through the pipelines and save answers, sources and the time of every token in one pack."""
    from graphs.registry import PIPELINES, default_pipelines
    from triptych.cli_eval import check_index
    from triptych.demo_pack import packs_dir
    from triptych.index import check_domain
    from triptych.runstore import new_run_id

    settings = _settings()
    try:
        check_domain(domain)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    chosen = chosen_pipelines(pipelines, default_pipelines(settings, domain))  # as Compare would ask
    asked = questions_to_record(settings, domain, questions)[:limit]
    if any(PIPELINES[p].uses_retrieval for p in chosen):
        check_index(settings, domain, None)
    check_keys_for(settings, chosen)
    if out is None:
        folder = packs_dir(settings)
        out = folder / f"{new_run_id(domain, folder)}.json"
    recorded, interrupted = record_with_progress(settings, domain, asked, chosen)
    pack = save(settings, recorded, domain, out)
    failed = sum(1 for c in pack.comparisons for r in c.results.values() if r.error)
    typer.echo(f"recorded {len(pack.comparisons)} question(s) into {out}")
    typer.echo(f"models: {pack.describe_models()}")
    if failed:
        typer.secho(f"{failed} answer(s) are errors: they replay as errors", fg=typer.colors.YELLOW, err=True)
    typer.echo("replay it on the app's Replay page (packs folder, or upload the file)")
    if interrupted:
        raise typer.Exit(130)


def questions_to_record(settings: Settings, domain: str, path: Path | None) -> list[QuestionToRecord]:
    """The questions of `--questions`, else the domain's preset questions; exit 2 naming the fix when none."""
    from triptych.demo_record import preset_questions, questions_from_file
    from triptych.qa import QAFormatError

    try:
        asked = questions_from_file(path) if path is not None else preset_questions(settings, domain)
    except QAFormatError as exc:
        raise _fail(str(exc)) from None
    if not asked:
        raise _fail(
            f"domain {domain!r} has no preset questions ({settings.corpora_dir / domain / 'qa.jsonl'}, test split): "
            "give --questions FILE"
        )
    return asked


def record_with_progress(
    settings: Settings, domain: str, asked: list[QuestionToRecord], pipelines: list[str]
) -> tuple[list[RecordedComparison], bool]:
    """Record each question with a progress bar on stderr; Ctrl-C keeps what is recorded so far.

    Returns the recorded comparisons and whether Ctrl-C cut the recording short.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from graphs.compare import Comparison
    from triptych.demo_record import record_comparison
    from triptych.llm.server import LocalModels

    recorded: list[RecordedComparison] = []
    interrupted = False
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    models = LocalModels(settings)
    try:
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(f"{domain}: starting", total=len(asked))
            runner = Comparison(settings, models)
            for question in asked:
                tokens = {p: 0 for p in pipelines}

                def on_event(event, question=question, tokens=tokens) -> None:  # type: ignore[no-untyped-def]
                    if event.kind == "token":
                        tokens[event.pipeline] += 1
                    states = ", ".join(f"{p} {n} tok" for p, n in tokens.items())
                    bar.update(task, description=f"{domain}: {question.question[:40]} ({states})")

                recorded.append(record_comparison(runner, question, domain, pipelines, on_event))
                bar.advance(task)
    except KeyboardInterrupt:
        typer.secho(f"interrupted after {len(recorded)} question(s)", fg=typer.colors.YELLOW, err=True)
        if not recorded:
            raise typer.Exit(130) from None
        interrupted = True
    finally:
        models.close()
    return recorded, interrupted


def save(settings: Settings, recorded: list[RecordedComparison], domain: str, out: Path) -> DemoPack:
    """Write the pack (no key value in it, even by accident); exit 1 naming the path when it cannot be written."""
    from triptych.demo_pack import DemoPack, key_values, write_pack

    pack = DemoPack.made_with(settings, recorded, domain)
    try:
        write_pack(pack, out, secrets=key_values(settings))
    except OSError as exc:
        raise _fail(f"cannot write the pack to {out}: {exc.strerror or exc}; give another --out", code=1) from None
    return pack


@demo_app.command("show")
def show(pack_file: Annotated[Path, typer.Argument(help="A demo pack file", exists=True, dir_okay=False)]) -> None:
    """Check a pack (format version, checksum) and list what it holds."""
    from triptych.demo_pack import PackError, is_shipped, read_pack, shipped_mark
    from triptych.settings import ConfigError, load_settings

    try:
        pack = read_pack(pack_file)
    except PackError as exc:
        raise _fail(str(exc)) from None
    try:
        shipped = is_shipped(load_settings(), pack_file)
    except ConfigError:  # the corpora folder is unknown: checking a pack needs no configuration
        shipped = False
    on = f" on {pack.machine}" if pack.machine else ""
    typer.echo(f"{pack_file}: recorded {pack.created_at}{on}, domain {pack.domain} (Triptych {pack.triptych_version})")
    if shipped:
        typer.echo(f"{shipped_mark(pack)}; read-only")
    typer.echo(f"models: {pack.describe_models()}")
    for comp in pack.comparisons:
        answered = ", ".join(f"{p} {outcome(r)}" for p, r in comp.results.items())
        typer.echo(f"  {comp.question}  [{answered}]")


def outcome(result: PipelineResult) -> str:
    """'error', its notice (e.g. not fine-tuned yet), or its total time."""
    if result.error:
        return "error"
    return f"{result.total_s or 0:.1f} s" if result.answer else f"no answer: {result.notice or 'empty'}"
