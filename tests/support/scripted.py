"""A real HTTP server on 127.0.0.1 that answers from a script: a proxy's error pages,
a slow endpoint. Each request is counted, so a test sees how often a client sent it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Reply", "Scripted", "scripted_server"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # waited before answering (a slow upstream)


@dataclass
class Scripted:
    port: int
    replies: list[Reply]  # the n-th request gets the n-th reply (the last one repeats)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str = "POST") -> int:
        with self.lock:
            return sum(1 for seen, _ in self.requests if seen == method)

    def next_reply(self, method: str, path: str) -> Reply:
        with self.lock:
            self.requests.append((method, path))
            return self.replies[min(len(self.requests), len(self.replies)) - 1]


def _handler(script: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            reply = script.next_reply(self.command, self.path)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting, as tested

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815

    return Handler


@contextmanager
def scripted_server(*replies: Reply) -> Iterator[Scripted]:
    script = Scripted(0, list(replies))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    script.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
