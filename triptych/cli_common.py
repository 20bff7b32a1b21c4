"""Helpers shared by the `triptych` sub-commands: an error exit that says what to fix, and the settings."""

from __future__ import annotations

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
