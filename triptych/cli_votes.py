"""`triptych votes`: the blind-vote leaderboard of each domain from the command line (votes are cast in the app).

Registered on the main app in `triptych/cli.py`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from triptych.cli_common import cli_settings as _settings
from triptych.cli_common import fail as _fail

DomainOption = Annotated[str | None, typer.Option("--domain", "-d", help="Only this domain (default: every voted one)")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON (the default when the output is not a terminal)")]


def votes(domain: DomainOption = None, as_json: JsonOption = False) -> None:
    """Blind-vote leaderboards: each method's wins, votes and win rate with its 95 % interval, per domain."""
    from triptych import votes as store

    settings = _settings()
    domains = store.voted_domains(settings)
    if domain is not None:
        if domain not in domains:
            raise _fail(f"no blind votes for {domain!r}; domains with votes: {', '.join(map(str, domains)) or 'none'}")
        domains = [domain]
    boards = {d: store.leaderboard(settings, d) for d in domains}
    if as_json or not sys.stdout.isatty():
        out = [{"domain": d, "votes": store.vote_count(settings, d), "rows": [r.to_dict() for r in rows]}
               for d, rows in boards.items()]  # fmt: skip
        typer.echo(json.dumps(out, indent=2))
        return
    if not boards:
        typer.echo(f"no blind votes yet in {store.votes_path(settings)}: open the app's Blind vote page")
        return
    for d, rows in boards.items():
        typer.echo(f"{d or '(no domain)'}: {store.vote_count(settings, d)} votes")
        for r in rows:
            lo, hi = r.ci95
            typer.echo(f"  {r.label:<18} {100 * r.win_rate:5.1f} %  (95 % CI {100 * lo:.0f}-{100 * hi:.0f} %)  "
                       f"{r.wins}/{r.votes}")  # fmt: skip
