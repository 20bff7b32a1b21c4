"""`triptych setup list|show|diff|export|import`: the named setups (triptych/setups.py) from the command line.

Registered on the main app in `triptych/cli.py`; `ask --setup` and `eval --setup` load one with `setup_or_exit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail

if TYPE_CHECKING:
    from triptych.settings import Settings
    from triptych.setups import Setup

setup_app = typer.Typer(help="Named setups: prompts, retrieval knobs, endpoints and adapter, as diffable files.")


def setup_or_exit(settings: Settings, name: str) -> Setup:
    """The named setup, or exit 2 with the reason (unknown name, bad field, bad prompt)."""
    from triptych.setups import SetupError, load_setup

    try:
        return load_setup(settings, name)
    except (SetupError, ValueError) as exc:
        raise _fail(str(exc)) from None


@setup_app.command("list")
def list_command() -> None:
    """The setups: 'default' (built in) and the saved ones, each with its content hash and description."""
    from triptych.setups import SetupError, load_setup, setup_names, setups_dir

    settings = _settings()
    for name in setup_names(settings):
        try:
            setup = load_setup(settings, name)
        except (SetupError, ValueError) as exc:
            typer.secho(f"{name}  unreadable: {exc}", fg=typer.colors.RED)
            continue
        where = "built in" if name == "default" else "saved"
        typer.echo(f"{name}  {setup.hash}  {where}  {setup.description}".rstrip())
    typer.echo(f"(saved setups live in {setups_dir(settings)})", err=True)


@setup_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Setup name ('default' is built in)")] = "default") -> None:
    """Print a setup as its file holds it (JSON), with its content hash on stderr."""
    setup = setup_or_exit(_settings(), name)
    typer.echo(setup.to_json(), nl=False)
    typer.echo(f"hash {setup.hash}", err=True)


@setup_app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="The first setup")],
    b: Annotated[str, typer.Argument(help="The second setup")],
) -> None:
    """What differs between two setups, field by field (prompt texts as unified diffs)."""
    from triptych.setups import diff

    settings = _settings()
    sa, sb = setup_or_exit(settings, a), setup_or_exit(settings, b)
    lines = diff(sa, sb)
    typer.echo(f"{a} ({sa.hash}) -> {b} ({sb.hash})")
    typer.echo("\n".join(lines) if lines else "same content")


@setup_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Setup name")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
) -> None:
    """Write a setup's file (JSON) to stdout or a file, to share or keep in git."""
    setup = setup_or_exit(_settings(), name)
    if output is None:
        typer.echo(setup.to_json(), nl=False)
        return
    output.write_text(setup.to_json(), encoding="utf-8")
    typer.echo(f"wrote {output} ({setup.name}, {setup.hash})")


@setup_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="A setup file (JSON), e.g. from `triptych setup export`")],
    name: Annotated[str | None, typer.Option(help="Save under this name instead of the file's")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a saved setup of that name (its version is kept)")] = False,
) -> None:
    """Check a setup file (fields, prompts, placeholders) and save it under data_dir/setups/."""
    from triptych.setups import SetupError, parse_text, save_setup

    settings = _settings()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        setup = parse_text(text, str(path))
        if name:
            setup = setup.renamed(name)
        saved = save_setup(settings, setup, overwrite=overwrite)
    except (SetupError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"imported {setup.name} ({setup.hash}) into {saved}")
