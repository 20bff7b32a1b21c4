"""Helpers shared by the `triptych` sub-commands: an error exit that says what to fix, and the settings."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from triptych.settings import ConfigError, Settings, load_settings, load_tracing_env


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` in red on stderr; return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def cli_settings() -> Settings:
    """The settings (and `.env`'s tracing variables), or exit 2 with the message naming the variable to fix."""
    load_tracing_env()
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def chosen_pipelines(option: str | None, default: Sequence[str]) -> list[str]:
    """The pipeline ids of a comma-separated `--pipelines` option (`default` when not given); exit 2 on unknown ids."""
    from graphs.registry import PIPELINES

    chosen = [p.strip() for p in option.split(",") if p.strip()] if option else list(default)
    unknown = [p for p in chosen if p not in PIPELINES]
    if unknown:
        raise fail(f"unknown pipeline(s) {', '.join(unknown)}; expected some of {', '.join(PIPELINES)}")
    return chosen


def check_keys_for(settings: Settings, pipelines: Sequence[str]) -> None:
    """Exit 2 naming the variable when an endpoint the pipelines use has no API key."""
    from graphs.registry import PIPELINES

    try:
        settings.check_keys(tuple(dict.fromkeys(PIPELINES[p].endpoint for p in pipelines)))
    except ConfigError as exc:
        raise fail(str(exc)) from None
