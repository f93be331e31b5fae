"""The request body limit, against a real uvicorn on loopback: refused before parsing and before authentication."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest

from mediabeat.app import create_app
from mediabeat.demo.site import running_demo_site
from mediabeat.settings import load_settings

LIMIT = 1024 * 1024
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    path = tmp_path_factory.mktemp("limit") / "mediabeat.db"
    settings = load_settings(database_url=f"sqlite:///{path}", enable_scheduler=False, max_request_bytes=LIMIT)
    with running_demo_site(create_app(settings)) as urls:
        parts = urlsplit(urls[0])
        yield parts.hostname or "", parts.port or 0


def _request_head(path: str, host: tuple[str, int], headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host[0]}:{host[1]}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), json.loads(body[: _length(data)])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _assert_too_large(status: int, body: dict[str, object]) -> None:
    assert status == 413
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}
    assert error["code"] == "too_large" and error["details"] == {"max_bytes": LIMIT}


def test_a_declared_50_mb_body_without_credentials_is_refused_unread(server: tuple[str, int]) -> None:
    started = time.monotonic()
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(_request_head("/api/v1/auth/login", server, {"Content-Length": str(FIFTY_MB)}))
        status, body = _read_response(sock)  # not one byte of the body sent
    _assert_too_large(status, body)
    assert time.monotonic() - started < 5


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[str, int]) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(_request_head("/api/v1/orgs", server, {"Transfer-Encoding": "chunked"}))
        try:
            while sent < FIFTY_MB:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = _read_response(sock)
    _assert_too_large(status, body)
    assert sent < 16 * LIMIT, f"the server read {sent} bytes before it answered"
    assert process.memory_info().rss - before < 40 * 1024 * 1024


def test_a_body_under_the_limit_reaches_the_route(server: tuple[str, int]) -> None:
    payload = json.dumps({"name": "x" * (LIMIT // 2)}).encode()
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(_request_head("/api/v1/orgs", server, {"Content-Length": str(len(payload))}) + payload)
        status, body = _read_response(sock)
    assert status == 401 and body["error"]["code"] == "unauthenticated"  # type: ignore[index]
