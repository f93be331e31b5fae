"""A small threaded HTTP server on 127.0.0.1 whose routes a test sets, and that counts connections."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Called with the request headers; returns a Route to answer with instead (conditional GET, counters).
    dynamic: Callable[[dict[str, str]], Route] | None = None
    # Trickle the body: (chunk, seconds to sleep before it).
    chunks: list[tuple[bytes, float]] | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.owner.accepted += 1
        return request


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner.requests.append((self.path, headers))
        route = owner.routes.get(self.path.split("?", 1)[0]) or owner.routes.get(self.path)
        if route is None:
            route = Route(status=404, body=b"not found")
        if route.dynamic is not None:
            route = route.dynamic(headers)
        if route.delay:
            time.sleep(route.delay)
        try:
            self.send_response(route.status)
            body = route.body if route.chunks is None else b""
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.chunks is None and "content-length" not in {k.lower() for k in route.headers}:
                self.send_header("Content-Length", str(len(body)))
            if route.chunks is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if route.chunks is not None:
                for chunk, pause in route.chunks:
                    time.sleep(pause)
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self.close_connection = True
            elif route.status != 304:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class LoopbackServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.accepted = 0
        self._server = _Server((host, 0), self)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server
