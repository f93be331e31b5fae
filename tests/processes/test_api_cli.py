"""The users and tokens commands, and the first admin that serve creates: real processes, real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes.harness import mediabeat, mediabeat_in_process
from tests.servers import free_port, wait_for_http

pytestmark = [pytest.mark.xdist_group("api-cli"), pytest.mark.slow, pytest.mark.timeout(400)]


@pytest.fixture
def env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    shutil.copyfile(sqlite_template, tmp_path / "mb.db")  # a migrated database (tests/conftest.py)
    url = f"sqlite:///{tmp_path}/mb.db"
    return {**os.environ, "MEDIABEAT_DATABASE_URL": url, "COLUMNS": "200", "ENABLE_SCHEDULER": "false"}


def test_users_and_tokens_from_the_command_line(env: dict[str, str]) -> None:
    # The first command runs as a process of its own; the rest in this process.
    weak = mediabeat(
        "users", "create", "a@example.test", "--role", "admin", "--password-stdin", env=env, stdin="short\n"
    )
    assert weak.returncode == 2 and "at least 12 characters" in weak.stderr and "Traceback" not in weak.stderr
    for bad in ("a@", "a b@example.test", "@example.test", "a@@example.test", "a@exa mple.test"):
        refused = mediabeat_in_process(
            "users", "create", bad, "--role", "admin", "--password-stdin", env=env, stdin="a-good-password-1\n"
        )
        assert refused.returncode == 2 and "is not an email address" in refused.stderr, (bad, refused.stderr)
    made = mediabeat_in_process(
        "users", "create", "a@example.test", "--role", "member", "--org", "Desk", "--password-stdin",
        env=env, stdin="a-good-password-1\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    twice = mediabeat_in_process(
        "users", "create", "A@example.test", "--role", "member", "--org", "Desk", "--password-stdin",
        env=env, stdin="a-good-password-1\n",
    )  # fmt: skip
    assert twice.returncode == 1 and "exists already" in twice.stderr
    listed = mediabeat_in_process("users", "list", "--json", env=env)
    assert '"email": "a@example.test"' in listed.stdout and '"org": "Desk"' in listed.stdout
    token = mediabeat_in_process("tokens", "create", "a@example.test", "--name", "ci", env=env)
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("mb_") and len(token.stdout.strip().splitlines()) == 1
    assert "shown only now" in token.stderr
    assert token.stdout.strip() not in mediabeat_in_process("tokens", "list", "--json", env=env).stdout
    revoked = mediabeat_in_process("tokens", "revoke", "1", env=env)
    assert revoked.returncode == 0 and "revoked token 1" in revoked.stdout
    missing = mediabeat_in_process("tokens", "revoke", "99", env=env)
    assert missing.returncode == 2 and "no token with id 99" in missing.stderr
    changed = mediabeat_in_process(
        "users", "set-password", "a@example.test", "--password-stdin", env=env, stdin="another-pass-22\n"
    )
    assert changed.returncode == 0, changed.stderr


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mediabeat", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", process)
    except AssertionError:
        process.kill()
        raise
    return process, base


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=30)
    return out


@pytest.mark.slow
def test_first_serve_creates_an_admin_and_prints_it_once(env: dict[str, str]) -> None:
    process, base = _serve(env)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not process.stdout:
            time.sleep(0.1)
    finally:
        first = _stop(process)
    assert "admin@localhost" in first and "mediabeat users set-password admin@localhost" in first
    assert f"dashboard: {base}/app/ (sign in as admin@localhost with the password above" in first
    password = next(line.split(":", 1)[1].strip() for line in first.splitlines() if "password:" in line)
    process, base = _serve(env)
    try:
        login = httpx.post(f"{base}/api/v1/auth/login", json={"email": "admin@localhost", "password": password})
        assert login.status_code == 200 and login.json()["user"]["must_change_password"] is True
    finally:
        second = _stop(process)
    assert "password:" not in second
    assert f"dashboard: {base}/app/ (sign in with your MediaBeat account)" in second


def test_admin_credentials_from_the_environment(env: dict[str, str]) -> None:
    env = {**env, "MEDIABEAT_ADMIN_EMAIL": "boss@example.test", "MEDIABEAT_ADMIN_PASSWORD": "boss-password-123"}
    process, base = _serve(env)
    try:
        login = httpx.post(
            f"{base}/api/v1/auth/login", json={"email": "boss@example.test", "password": "boss-password-123"}
        )
        assert login.status_code == 200
    finally:
        out = _stop(process)
    assert "boss-password-123" not in out
