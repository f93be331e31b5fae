"""schedule/ is pure: importing it loads no database, HTTP or web framework."""

from __future__ import annotations

import subprocess
import sys


def test_schedule_package_imports_no_io_libraries() -> None:
    code = (
        "import sys, mediabeat.schedule; "
        "bad = [m for m in ('sqlalchemy', 'httpx', 'aiohttp', 'fastapi', 'mediabeat.db') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
