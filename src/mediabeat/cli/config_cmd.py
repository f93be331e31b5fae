"""`mediabeat config`: every setting, its environment variable, default and current value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mediabeat.cli.common import table
from mediabeat.db.engine import database_location, redacted
from mediabeat.domain.websub import push_off_reason
from mediabeat.settings import (
    DEFAULT_DATABASE_URL_DOC,
    ENV_FILE,
    Settings,
    load_settings,
    unknown_variables,
    variable_of,
)


def settings_reference() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    rows = []
    for name, info in Settings.model_fields.items():
        if name == "database_url":
            default = DEFAULT_DATABASE_URL_DOC
        else:
            default = "" if info.default is None else str(info.default)
        rows.append((variable_of(name), default, info.description or ""))
    return rows


def markdown_reference() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{var}` | `{default}` | {text} |" if default else f"| `{var}` | | {text} |"
        for var, default, text in settings_reference()
    ]
    return "\n".join(lines) + "\n"


def config(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the reference table as Markdown")] = False,
) -> None:
    """Show every setting with its environment variable and the value in effect."""
    if markdown:
        typer.echo(markdown_reference(), nl=False)
        return
    current = load_settings()
    env_file = Path(ENV_FILE).absolute()
    typer.echo(f"database: {database_location(current.database_url)}")
    typer.echo(f"settings: environment variables{f', then {env_file}' if env_file.is_file() else ''}")
    typer.echo(f"websub: {push_off_reason(current.public_url) or 'push is on (callbacks under MEDIABEAT_PUBLIC_URL)'}")
    for sentence in unknown_variables():
        typer.echo(f"warning: {sentence}: it is ignored", err=True)
    rows: list[list[Any]] = []
    for name in Settings.model_fields:
        value = getattr(current, name)
        if name == "database_url":
            value = redacted(value)
        if "password" in name and value:
            value = "********"
        rows.append([variable_of(name), value])
    table(["variable", "value"], rows)
