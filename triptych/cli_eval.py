"""`triptych eval`: score the pipelines against gold answers; `eval report|compare|list` for stored runs.

Registered on the main app in `triptych/cli.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triptych.cli_common import check_keys_for, chosen_pipelines
from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail
from triptych.settings import ConfigError, Settings

DEFAULT = "default"  # the built-in setup (triptych/setups.py)

if TYPE_CHECKING:
    from triptych.evaluate.runner import EvalOutcome, Evaluation
    from triptych.evaluate.store import LoadedRun
    from triptych.llm.server import LocalModels
    from triptych.qa import QARecord
    from triptych.setups import Setup

eval_app = typer.Typer(
    help="Evaluate the pipelines on gold questions; report on and compare stored runs.",
    invoke_without_command=True,
)


def questions_for(settings: Settings, domain: str, qa: Path | None, split: str | None) -> tuple[Path, str | None]:
    """The QA file and split to use: --qa as given (every record unless --split), else the demo test split."""
    if qa is not None:
        return qa, split
    path = settings.corpora_dir / domain / "qa.jsonl"
    if not path.is_file():
        raise _fail(
            f"no gold questions for domain {domain!r} in {path}: pass --qa FILE.jsonl "
            f"(for a shared eval set, e.g. --qa ../shared/eval/{domain}/qa_dev.jsonl)"
        )
    return path, split or "test"


def ingest_command(settings: Settings, domain: str, qa: Path | None) -> str:
    """The exact command that builds the domain's index, from where its documents most likely are."""
    candidates = [qa.parent / "docs"] if qa is not None else []
    candidates.append(settings.corpora_dir / domain / "docs")
    docs = next((c for c in candidates if c.is_dir()), None)
    return f"triptych ingest {docs if docs else 'PATH/TO/DOCS'} --domain {domain}"


def check_index(settings: Settings, domain: str, qa: Path | None) -> None:
    """Fail with the command that builds the index when the domain has none."""
    from triptych.index import IndexNotFoundError, IndexStoreError, VariantNotBuiltError, open_index

    try:
        open_index(settings, domain)
    except VariantNotBuiltError as exc:  # other chunkings/models exist: the message names the build command
        raise _fail(str(exc)) from None
    except IndexNotFoundError:
        raise _fail(
            f"no index for domain {domain!r} (embedding model {settings.embedding_model}) in "
            f"{settings.chroma_path}: build it with `{ingest_command(settings, domain, qa)}`"
        ) from None
    except IndexStoreError as exc:
        raise _fail(str(exc)) from None


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option("--domain", "-d", help="The domain (index) to ask against")] = None,
    qa: Annotated[
        Path | None,
        typer.Option(
            help="Gold QA file (.jsonl); default: corpora/<domain>/qa.jsonl, test split", exists=True, dir_okay=False
        ),
    ] = None,  # fmt: skip
    split: Annotated[str | None, typer.Option(help="Only records of this split (records without one pass)")] = None,
    pipelines: Annotated[
        str | None, typer.Option(help="Comma-separated pipeline ids (default: prompt,rag,finetuned)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary JSON here")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Questions at once (default: 1 with the local model, else 4)")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Name the run; continue it if it exists")] = None,
    fresh: Annotated[bool, typer.Option(help="Start a new run even if an unfinished one matches")] = False,
    retry_errors: Annotated[bool, typer.Option(help="Ask again where a pipeline failed before")] = False,
    judge: Annotated[bool, typer.Option(help="Grade with the LLM judge (TRIPTYCH_JUDGE_MODEL), if set")] = True,
    setup: Annotated[str, typer.Option(help="Score the pipelines under this setup (`triptych setup list`)")] = DEFAULT,
) -> None:
    """Run gold questions through the pipelines and score every answer (resumes an interrupted run)."""
    if ctx.invoked_subcommand is not None:
        return
    if domain is None:
        typer.echo(ctx.get_help())
        raise _fail("give --domain NAME (and --qa FILE.jsonl unless it is a demo domain)")
    from graphs.registry import PIPELINES, default_pipelines
    from triptych.cli_setup import setup_or_exit
    from triptych.evaluate.runner import qa_file_label
    from triptych.index import check_domain
    from triptych.llm.server import LocalModels

    base = _settings()
    under = setup_or_exit(base, setup)
    settings = under.apply(base)
    try:
        check_domain(domain)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    chosen = chosen_pipelines(pipelines, default_pipelines(settings, domain))
    qa_path, split, records = eval_records(settings, domain, qa, split, limit)
    if any(PIPELINES[p].uses_retrieval for p in chosen):
        check_index(settings, domain, qa)
    check_keys_for(settings, chosen)
    models = LocalModels(settings)
    try:
        evaluation = make_evaluation(settings, models, chosen, judge=judge, concurrency=concurrency, setup=under)
        outcome = run_with_progress(
            evaluation, domain, records, chosen, qa_file=qa_file_label(qa_path), split=split, run_id=run_id,
            fresh=fresh, retry_errors=retry_errors,
        )  # fmt: skip
    finally:
        models.close()
    print_summary(outcome.summary)
    typer.echo(f"stored in {outcome.run.path}; HTML: triptych eval report {outcome.run.run_id} --html report.html")
    if json_out is not None:
        json_out.write_text(json.dumps(outcome.summary, indent=2, ensure_ascii=False), encoding="utf-8")


def make_evaluation(
    settings: Settings, models: LocalModels, pipelines: list[str], *, judge: bool, concurrency: int | None,
    setup: Setup | None = None,
) -> Evaluation:  # fmt: skip
    """The runner: with the judge if asked (and configured), questions at once 1 with the local model, else 4.

    Under `setup` (whose settings `settings` already are) the pipelines use its prompts, knobs and adapter.
    """
    from graphs.compare import Comparison
    from graphs.registry import PIPELINES
    from triptych.evaluate.judge import Judge
    from triptych.evaluate.runner import Evaluation

    try:
        grader = Judge.from_settings(settings) if judge else None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if concurrency is None:
        local = any(settings.endpoint(PIPELINES[p].endpoint).is_local for p in pipelines)
        concurrency = 1 if local else 4
    return Evaluation(Comparison(settings, models, setup=setup), judge=grader, concurrency=concurrency)


def eval_records(
    settings: Settings, domain: str, qa: Path | None, split: str | None, limit: int | None
) -> tuple[Path, str | None, list[QARecord]]:
    """The QA file, split and (at most `limit`) questions to ask; exit 2 when there are none."""
    from triptych.qa import QAFormatError, load_qa

    qa_path, split = questions_for(settings, domain, qa, split)
    try:
        records = load_qa(qa_path, split)
    except QAFormatError as exc:
        raise _fail(str(exc)) from None
    records = records[:limit] if limit else records
    if not records:
        raise _fail(f"no questions in {qa_path}" + (f" for split {split!r}" if split else ""))
    return qa_path, split, records


def run_with_progress(
    evaluation: Evaluation, domain: str, records: list[QARecord], pipelines: list[str], **run_kwargs: Any
) -> EvalOutcome:
    """`evaluation.run` with a progress bar on stderr; Ctrl-C exits 130 saying how to continue."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    started: dict[str, Any] = {}
    try:
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(f"{domain}: starting", total=len(records))

            def on_start(run, done: int, total: int) -> None:  # type: ignore[no-untyped-def]
                started["run"] = run
                note = f" (continuing: {done} already done)" if done else ""
                bar.console.print(f"run {run.run_id}{note} in {run.path}")
                bar.update(task, completed=done, total=total)

            def on_progress(event) -> None:  # type: ignore[no-untyped-def]
                states = ", ".join(f"{p} {s}" for p, s in event.results.items())
                bar.update(task, completed=event.done, description=f"{domain}: {event.question_id} ({states})")

            return evaluation.run(domain, records, pipelines, on_progress=on_progress, on_start=on_start, **run_kwargs)
    except KeyboardInterrupt:
        run = started.get("run")
        where = f" run {run.run_id}" if run else ""
        typer.secho(f"interrupted: run the same command again to continue{where}", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None


SUMMARY_ROWS = (
    ("correct", "correct", "rate"), ("contains", "contains", "rate"), ("exact match", "exact_match", "rate"),
    ("token F1", "f1", "rate"), ("numeric", "numeric", "rate"), ("refusals right", "refusal_accuracy", "rate"),
    ("false refusals", "false_refusal_rate", "rate"), ("hit@5", "hit@5", "rate"),
    ("cited holds answer", "cited_holds_answer", "rate"), ("judge score", "judge.score", "rate"),
    ("ttft median", "ttft_s.median", "s"), ("total median", "total_s.median", "s"),
    ("total p95", "total_s.p95", "s"), ("cost / answer", "cost_usd_per_answer", "usd"),
    ("errors", "errors", "n"), ("cut short", "cut_short", "n"), ("unavailable", "unavailable", "n"),
)  # fmt: skip


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    return {"rate": f"{100 * value:.1f} %", "s": f"{value:.2f} s", "usd": f"${value:.5f}"}.get(kind, str(value))


def print_summary(summary: dict[str, Any]) -> None:
    """The run's metrics as a table, one column per pipeline, then the pairwise differences and miss causes.

    A fine-tuned pipeline's cells are its figures on questions unseen in training, the seen ones beside.
    """
    from rich.console import Console
    from rich.table import Table

    from triptych.evaluate import headline as hl

    pipelines = summary["pipelines"]
    heads = {p: hl.headline(p, summary["metrics"][p]) for p in pipelines}
    table = Table("metric", *pipelines, title=f"{summary['run_id']} ({summary['status']}, "
                  f"{summary['questions']} questions, domain {summary['domain']})")  # fmt: skip
    table.add_row("answers scored", *(hl.counts_text(heads[p]) for p in pipelines))
    for label, key, kind in SUMMARY_ROWS:
        values = [hl.value(heads[p].metrics, key) for p in pipelines]
        if any(v is not None for v in values):
            cells = []
            for p, v in zip(pipelines, values, strict=True):
                beside = hl.seen_beside(heads[p], key, lambda x, k=kind: _cell(x, k))
                cells.append(_cell(v, kind) + (f" | {beside}" if beside else ""))
            table.add_row(label, *cells)
        if key == "correct":
            table.add_row("correct 95 % CI", *(hl.interval_text(heads[p].metrics) for p in pipelines))
    if any(heads[p].basis == "unseen" or heads[p].split_missing for p in pipelines):
        table.caption = "fine-tuned columns: questions the adapter was not trained on | seen in training"
    console = Console(width=160)
    console.print(table)
    comparisons = summary.get("comparisons")
    console.print("Differences between pipelines (paired bootstrap 95 % CI, McNemar exact p):", markup=False)
    for line in [hl.comparison_text(c) for c in comparisons] if comparisons is not None else [hl.NOT_RECORDED]:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print("Why answers missed:", markup=False)
    for p in pipelines:
        console.print(f"  {p}: {hl.causes_text(summary['metrics'][p])}", markup=False)


@eval_app.command("report")
def report(
    runs: Annotated[list[str], typer.Argument(help="Run id(s); several runs give one section per domain")],
    html: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML report here")],
    misses: Annotated[int, typer.Option(min=0, help="Worst misses shown per pipeline")] = 5,
) -> None:
    """Write a self-contained HTML report (tables, charts, worst misses, settings) of stored runs."""
    from triptych.evaluate.report import render_html
    from triptych.evaluate.store import RunNotFoundError, load_run

    settings = _settings()
    try:
        loaded = [load_run(settings, r) for r in runs]
    except RunNotFoundError as exc:
        raise _fail(str(exc).strip("'\"")) from None
    html.write_text(render_html(loaded, misses), encoding="utf-8")
    typer.echo(f"wrote {html}")


@eval_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="The earlier run")],
    run_b: Annotated[str, typer.Argument(help="The later run")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
    every: Annotated[
        bool, typer.Option("--every-question", help="List every question both runs answered, not only changes")
    ] = False,
) -> None:
    """The change in each metric (B - A) per pipeline, and the questions whose result changed.

    Two runs of the same questions under two setups (`triptych eval --setup NAME`) compare the setups:
    what differs between them is printed first.
    """
    from rich.console import Console
    from rich.table import Table

    from triptych.evaluate.report import COMPARED, compare_runs
    from triptych.evaluate.store import RunNotFoundError, load_run

    settings = _settings()
    try:
        a, b = load_run(settings, run_a), load_run(settings, run_b)
    except RunNotFoundError as exc:
        raise _fail(str(exc).strip("'\"")) from None
    diff = compare_runs(a, b) | {"setups": setups_compared(a, b)}
    if every:
        diff["every_question"] = every_question(a, b)
    if as_json:
        typer.echo(json.dumps(diff, indent=2, ensure_ascii=False))
        return
    console = Console(width=180)
    if not diff["pipelines"]:
        raise _fail("the two runs have no pipeline in common")
    setups = diff["setups"]
    typer.echo(f"setups: A {setups['a']}, B {setups['b']}")
    for line in setups["diff"]:
        typer.echo(f"  {line}")
    heads = [f"{p}{' unseen' if diff['basis'][p] == 'unseen' else ''} A → B (Δ)" for p in diff["pipelines"]]
    table = Table("metric", *heads, title=f"{run_a} → {run_b}")
    for key in COMPARED:
        table.add_row(key, *(_change(diff["metrics"][p][key], key) for p in diff["pipelines"]))
    console.print(table)
    for p, seen in diff["seen"].items():
        if isinstance(seen, dict):
            n = seen["n"]
            line = f"correct {_change(seen['correct'], 'correct')} (n = {n['a']} → {n['b']})"
        else:
            line = seen
        typer.echo(f"{p}, questions seen in training: {line}")
    typer.echo(f"{diff['shared_answers']} answers in both runs: {diff['fixed']} now right, {diff['broken']} now wrong")
    changes = Table("pipeline", "question", "correct A → B", "F1 A → B", "answer A", "answer B", title="changed")
    for c in diff["changed"]:
        changes.add_row(
            c["pipeline"], f"{c['question_id']}: {c['question']}", f"{c['correct']['a']} → {c['correct']['b']}",
            f"{_cell(c['f1']['a'], 'rate')} → {_cell(c['f1']['b'], 'rate')}", str(c["answer"]["a"] or ""),
            str(c["answer"]["b"] or ""),
        )  # fmt: skip
    if diff["changed"]:
        console.print(changes)
    if every:
        table = Table("pipeline", "question", "correct A → B", "answer A", "answer B", title="every question")
        for row in diff["every_question"]:
            correct = f"{row['correct']['a']} → {row['correct']['b']}"
            question = f"{row['question_id']}: {row['question']}"
            table.add_row(row["pipeline"], question, correct, row["answer"]["a"], row["answer"]["b"])
        console.print(table)


def setups_compared(a: LoadedRun, b: LoadedRun) -> dict[str, Any]:
    """Each run's setup as 'name (hash)' and, where both recorded it in full, what differs between them."""
    from triptych.evaluate.report import setup_label
    from triptych.setups import SetupError, diff, parse

    lines: list[str] = []
    full = [(r.manifest.get("setup") or {}).get("setup") for r in (a, b)]
    if all(full):
        try:
            lines = diff(parse(full[0]), parse(full[1]))
        except SetupError as exc:
            lines = [f"cannot compare the setups: {exc}"]
    elif any(full):
        lines = ["one run recorded no setup (made before setups)"]
    return {"a": setup_label(a.summary), "b": setup_label(b.summary), "diff": lines}


def every_question(a: LoadedRun, b: LoadedRun) -> list[dict[str, Any]]:
    """Every (question, pipeline) both runs answered: correct and the answer (or error) in each."""
    index = {(r["question_id"], r["pipeline"]): r for r in a.answers}
    rows = []
    for rb in b.answers:
        ra = index.get((rb["question_id"], rb["pipeline"]))
        if ra is None:
            continue
        rows.append({
            "question_id": rb["question_id"], "pipeline": rb["pipeline"], "question": rb["question"],
            "correct": {"a": ra["scores"].get("correct"), "b": rb["scores"].get("correct")},
            "answer": {"a": str(ra.get("answer") or ra.get("error") or ""),
                       "b": str(rb.get("answer") or rb.get("error") or "")},
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["pipeline"], r["question_id"]))


def _change(d: dict[str, Any], key: str) -> str:
    """'a → b (+change)' of one compared metric."""
    kind = "s" if key.endswith("_s.median") else ("usd" if key.startswith("cost") else "rate")
    change = "" if d["change"] is None else f" ({d['change']:+.3f})"
    return f"{_cell(d['a'], kind)} → {_cell(d['b'], kind)}{change}"


@eval_app.command("list")
def list_command() -> None:
    """List the stored runs, newest first, with each pipeline's 'correct' rate (fine-tuned: on unseen questions)."""
    from triptych.evaluate.headline import headline
    from triptych.evaluate.store import evals_dir, list_runs

    settings = _settings()
    runs = list_runs(settings)
    if not runs:
        typer.echo(f"no evaluation runs in {evals_dir(settings)}: start one with `triptych eval --domain NAME`")
        return
    for r in runs:
        heads = {p: headline(p, r.metrics.get(p, {})) for p in r.pipelines}
        scores = ", ".join(
            f"{p} {_cell(h.metrics.get('correct'), 'rate')}{' (unseen)' if h.basis == 'unseen' else ''}"
            for p, h in heads.items()
        )
        typer.echo(f"{r.run_id}  {r.domain}  {r.status}  {r.questions} q  {scores}")
