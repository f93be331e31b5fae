"""Every `mediabeat` command the README and docs/ show exists, with the options it is shown with.

Each command line is parsed by the CLI's own parser (no command runs): a documented subcommand or
option that the CLI does not have fails here, not in a new user's shell.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import typer
import typer.core

from mediabeat.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
# A code-block line (4 spaces in) that runs mediabeat, maybe after a pipe or inside $(...).
BLOCK = re.compile(r"^\s{4,}(?:.*?\|\s*|.*?\$\()?(?:\S*/)?mediabeat (.*)$")
# `mediabeat ...` in running text.
INLINE = re.compile(r"`(?:\S*/)?mediabeat ([^`]+)`")
SHELL_OPERATORS = {"|", ">", ">>", "<", "&&", ";", "||"}


def documented_commands(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, the text after `mediabeat `) for each command the document shows."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        block = BLOCK.match(line)
        if block:
            yield start + 1, block.group(1)
        elif not line.startswith("    "):
            yield from ((start + 1, m.group(1)) for m in INLINE.finditer(line))
        i += 1


def arguments(text: str) -> list[str]:
    """The command's arguments: up to a comment, a pipe, a redirection or the end of a $(...)."""
    args: list[str] = []
    for token in shlex.split(text, comments=True):
        if token in SHELL_OPERATORS or token[:1] in ("<", ">", ")"):
            break
        if token.endswith((")", ";")):
            args.append(token[:-1])
            break
        args.append(token)
    return args


def parse_error(args: list[str]) -> str | None:
    """Why the CLI would refuse `args` before running anything (unknown command or option), or None."""
    command: typer.core.TyperCommand | typer.core.TyperGroup = typer.main.get_command(app)  # type: ignore[assignment]
    while isinstance(command, typer.core.TyperGroup) and args and not args[0].startswith("-"):
        sub = command.get_command(None, args[0])  # type: ignore[arg-type]
        if sub is None:
            return f"no command {args[0]!r}"
        command, args = sub, args[1:]  # type: ignore[assignment]
    context = command.context_class(command, info_name="mediabeat")
    try:
        command.make_parser(context).parse_args(args)
    except Exception as exc:  # the parser's UsageError family
        return str(exc)
    return None


def test_the_parser_check_catches_a_wrong_option_and_command() -> None:
    assert parse_error(["tasks", "run", "nightly-cleanup", "--no-such-option"]) is not None
    assert parse_error(["tasks", "no-such-command"]) is not None
    assert parse_error(["feeds", "add", "https://example.org/feed.xml", "--org", "newsroom", "--no-check"]) is None


def test_every_documented_command_parses() -> None:
    wrong, seen = [], 0
    for path in DOCUMENTS:
        for line, text in documented_commands(path):
            if any(mark in text for mark in ("[", "…", "...")):
                continue  # a synopsis such as `articles reextract [--since DATE]`, not a command
            seen += 1
            error = parse_error(arguments(text))
            if error:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: mediabeat {text.strip()}: {error}")
    assert seen > 100, "the documents show hardly any commands: is the pattern still right?"
    assert wrong == []
