"""The layers hold: schedule/ is pure, adapters reach no store, and no function runs past 60 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mediabeat

ROOT = Path(mediabeat.__file__).parent


def test_schedule_package_imports_no_io_libraries() -> None:
    code = (
        "import sys, mediabeat.schedule; "
        "bad = [m for m in ('sqlalchemy', 'httpx', 'aiohttp', 'fastapi', 'mediabeat.db') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_function_outside_the_migrations_is_longer_than_sixty_lines() -> None:
    """Long functions are two things: split them (docs/architecture.md says where the parts go)."""
    root = ROOT
    long = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_adapters_import_no_store() -> None:
    root = ROOT
    leaks = [
        str(path.relative_to(root))
        for folder in ("cli", "web")
        for path in (root / folder).rglob("*.py")
        if "db.stores" in path.read_text(encoding="utf-8")
    ]
    assert leaks == []
