"""A longer schemathesis campaign against `mediabeat serve` on 127.0.0.1 (`make fuzz`; not part of `make test`).

    python bench/fuzz_api.py [SECONDS]        # default 180; MEDIABEAT_FUZZ_DATABASE_URL for PostgreSQL

It migrates a fresh database (a temporary SQLite file unless MEDIABEAT_FUZZ_DATABASE_URL names
an empty PostgreSQL database), creates an admin with an API token, starts serve with the
scheduler off, and runs `schemathesis run` over the whole OpenAPI schema, NUL bytes allowed,
for the time budget. It exits with schemathesis's status: non-zero when a check failed
(a 5xx, or a response that breaks the schema). The tests run a bounded version of it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mediabeat.db import migrate
from mediabeat.testing import seed_api_fuzz_target

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Revoking the token or deactivating the admin would lock the campaign out of the rest of the schema.
EXCLUDED = r"^/api/v1/(tokens|users)/\{"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("mediabeat serve did not start")


def main(seconds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="mediabeat-fuzz-") as scratch:
        url = os.environ.get("MEDIABEAT_FUZZ_DATABASE_URL") or f"sqlite:///{Path(scratch) / 'fuzz.db'}"
        migrate.upgrade(url)
        token = asyncio.run(seed_api_fuzz_target(url, token_name="fuzz"))
        port = free_port()
        env = {
            **os.environ,
            "MEDIABEAT_DATABASE_URL": url,
            "ENABLE_SCHEDULER": "false",
            "MEDIABEAT_LOG_LEVEL": "WARNING",
            "MEDIABEAT_CRAWLER_OFFLINE": "true",  # adding a feed fetches it: no fuzzed URL may be reached
            "MEDIABEAT_LOGIN_MAX_FAILURES": "100000",
            "MEDIABEAT_LOGIN_MAX_FAILURES_PER_IP": "100000",
        }
        serve = [sys.executable, "-m", "mediabeat", "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(serve, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, process)
            command = [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                CHECKS,
                "--exclude-path-regex",
                EXCLUDED,
                "--generation-allow-x00",
                "true",
                "--max-time",
                str(seconds),
                "--continue-on-failure",
                "--workers",
                "2",
            ]
            return subprocess.run(command, env=env).returncode
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 180))
