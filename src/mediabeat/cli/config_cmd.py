"""`mediabeat config`: every setting, its environment variable, default and current value."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import AliasChoices

from mediabeat.cli.common import table
from mediabeat.db.engine import redacted
from mediabeat.settings import Settings, load_settings


def variable_of(name: str) -> str:
    info = Settings.model_fields[name]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return f"MEDIABEAT_{name.upper()}"


def settings_reference() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    rows = []
    for name, info in Settings.model_fields.items():
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
    rows: list[list[Any]] = []
    for name in Settings.model_fields:
        value = getattr(current, name)
        if name == "database_url":
            value = redacted(value)
        if "password" in name and value:
            value = "********"
        rows.append([variable_of(name), value])
    table(["variable", "value"], rows)
