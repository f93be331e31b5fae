"""For the monitor tests: a loopback webhook receiver that records each POST, and articles to store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mediabeat.crawler.urls import url_hash
from mediabeat.db.stores.articles import NewArticle


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next status of `statuses` (200 once they run out) and keeps what came."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    accepted: int = 0
    port: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            receiver.arrived.set()

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _handler(receiver))

    def get_request(self) -> tuple[Any, Any]:
        request = super().get_request()
        self.receiver.accepted += 1
        return request


def webhook_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or []))
    server = _Server(receiver)
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def article(org_id: int, n: int, title: str, text: str = "") -> NewArticle:
    url = f"https://news.example.test/{n}"
    return NewArticle(
        org_id=org_id,
        feed_id=None,
        url=url,
        url_hash=url_hash(url),
        canonical_url=url,
        title=title,
        author=None,
        published_at=None,
        summary=None,
        text=text or title,
        language="en",
    )
