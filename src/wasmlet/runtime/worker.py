"""The body of one worker process: receive a Job, run it, send back the Outcome.

Messages are `wire` frames over the socket the pool passes as the only argument.
The worker ignores SIGINT (the server decides when workers stop) and exits on EOF.
"""

from __future__ import annotations

import json
import signal
import socket
import sys

from wasmlet.runtime import wire
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import HostCall, Job, Outcome, OutcomeKind
from wasmlet.runtime.wire import Kind

READ_BUFFER_BYTES = 64 << 10


class _Link:
    """Blocking frames over the worker's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb", buffering=READ_BUFFER_BYTES)

    def send(self, frame: bytes) -> None:
        self._sock.sendall(frame)

    def receive(self, expected: Kind) -> bytes:
        """The body of the next frame, which must be of kind `expected`; EOFError at the end."""
        header: bytes = self._reader.read(wire.HEADER.size)
        if len(header) < wire.HEADER.size:
            raise EOFError
        size, kind = wire.HEADER.unpack(header)
        if kind != expected:
            raise wire.ProtocolError(f"expected {expected.name}, got kind {kind}")
        body: bytes = self._reader.read(size)
        if len(body) < size:
            raise EOFError
        return body


def worker_main(link: _Link) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def call_host(call: HostCall) -> bytes:
        """Ask the server and wait for its answer (the guest is blocked meanwhile)."""
        try:
            frame = wire.encode_host_call(call)
        except (ValueError, OverflowError) as exc:
            if call.kind == "http_request":
                error = {"type": "too_large", "message": str(exc)}
                return wire.pack_http_reply(json.dumps({"error": error}).encode(), b"")
            return json.dumps({"error": {"type": "query_error", "message": str(exc)}}).encode()
        link.send(frame)
        return link.receive(Kind.HOST_REPLY)

    with Executor(limit_file_size=True, call_host=call_host) as executor:
        link.send(wire.frame(Kind.READY, b""))
        while True:
            try:
                job = wire.decode_job(link.receive(Kind.JOB))
            except (EOFError, OSError):
                return
            try:
                outcome = executor.run(job)
            except Exception as exc:  # a host-side failure must not kill the worker
                outcome = Outcome(
                    OutcomeKind.RUNTIME_CRASH, message=f"runtime error: {type(exc).__name__}: {exc}"
                )
            try:
                link.send(_encode_within_limit(outcome, job))
            except OSError:
                return


def _encode_within_limit(outcome: Outcome, job: Job) -> bytes:
    """The outcome's frame; one the server would refuse as oversize becomes a crash."""
    limit = wire.outcome_limit(job)
    try:
        frame = wire.encode_outcome(outcome)
    except ValueError as exc:
        problem = f"outcome cannot be encoded: {exc}"
    else:
        if len(frame) - wire.HEADER.size <= limit:
            return frame
        problem = f"outcome over {limit} bytes"
    return wire.encode_outcome(Outcome(OutcomeKind.RUNTIME_CRASH, message=problem))


if __name__ == "__main__":
    worker_main(_Link(socket.socket(fileno=int(sys.argv[1]))))
