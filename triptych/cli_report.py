"""`triptych report --domain D --html out.html`: the stakeholder page of one domain (triptych/stakeholder.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from triptych.cli_common import cli_settings, fail
from triptych.settings import Settings


def domains_with_data(settings: Settings) -> set[str]:
    """Domains the page can say something about: demo corpora, indexes, evaluation runs, history."""
    from triptych.evaluate.store import list_runs
    from triptych.history import list_history
    from triptych.ingest import known_domains

    found = set(known_domains(settings)) | {r.domain for r in list_runs(settings)}
    return found | {r.domain for r in list_history(settings) if r.domain}


def report(
    domain: Annotated[str, typer.Option(help="The domain to report on, e.g. hr_handbook")],
    html: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML page here")],
) -> None:
    """Write one self-contained HTML page for stakeholders: methods compared, examples, cost and break-even."""
    from triptych.stakeholder import SECTIONS, render_report

    settings = cli_settings()
    known = domains_with_data(settings)
    if domain not in known:
        listed = ", ".join(sorted(known)) or "none yet: `triptych ingest DIR --domain NAME` makes one"
        raise fail(f"nothing is known about domain {domain!r}; domains: {listed}")
    if not html.parent.is_dir():
        raise fail(f"{html.parent} is not a folder: create it, or write the report elsewhere")
    page = render_report(settings, domain)
    fd, tmp = tempfile.mkstemp(dir=html.parent, prefix=f".{html.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, html)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    filled = [s.title for s in SECTIONS if f'id="{s.id}" class="filled"' in page]
    empty = [s.title for s in SECTIONS if s.title not in filled]
    typer.echo(f"wrote {html} ({len(page) // 1024} KiB)")
    typer.echo(f"  with: {', '.join(filled) or 'nothing yet'}")
    if empty:
        typer.echo(f"  not recorded yet: {', '.join(empty)}")
