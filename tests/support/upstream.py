"""A real HTTP server on 127.0.0.1 that plays the outside world for outbound tests.

Routes: `/hello` (a fixed body), `/echo` (method, path, headers and body as JSON),
`/big?n=N` (N bytes), `/slow` (answers only when the test ends). Every request is
recorded, so a test can see what reached the upstream.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HELLO = b"hello from upstream"


@dataclass
class Upstream:
    port: int
    requests: list[dict[str, object]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            seen: dict[str, object] = {
                "method": self.command,
                "path": parts.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
            }
            upstream.requests.append(seen)
            if parts.path == "/hello":
                self._send(200, HELLO, "text/plain")
            elif parts.path == "/echo":
                self._send(201, json.dumps(seen).encode(), "application/json")
            elif parts.path == "/big":
                size = int(parse_qs(parts.query)["n"][0])
                self._send(200, b"x" * size, "application/octet-stream")
            elif parts.path == "/slow":
                upstream.release.wait(60)
                self._send(200, b"late", "text/plain")
            else:
                self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.send_header("x-upstream", "yes")
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the caller went away (a deadline cut it)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815

    return Handler


@contextmanager
def running_upstream() -> Iterator[Upstream]:
    upstream = Upstream(0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    server.daemon_threads = True
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        upstream.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
