"""The server's end of a worker's socket: an asyncio protocol that splits frames.

Bytes are received straight into a reused buffer (`BufferedProtocol`), and each
complete frame is handed over as a memoryview of it, decoded before the buffer is
reused; a frame larger than the buffer gets a buffer of its own size, so a body of
several megabytes costs one copy and never blocks the loop. A header announcing a
frame over `max_frame`, or a kind the protocol does not know, is a violation before
any of its body is read. Writes go to the transport's own buffer, without awaiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from wasmlet.runtime.wire import HEADER, Kind, ProtocolError

BUFFER_BYTES = 256 << 10
_KINDS = frozenset(int(kind) for kind in Kind)

FrameHandler = Callable[[Kind, memoryview], None]
"""Handles one frame; raises `ProtocolError` when the frame is not allowed now."""


class FrameChannel(asyncio.BufferedProtocol):
    def __init__(
        self,
        on_frame: FrameHandler,
        on_violation: Callable[[str], None],
        on_lost: Callable[[], None],
        *,
        max_frame: int,
    ) -> None:
        self.max_frame = max_frame
        self._on_frame = on_frame
        self._on_violation = on_violation
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0
        self._large: bytearray | None = None
        self._large_kind = Kind.READY
        self._large_filled = 0
        self._broken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._broken:
            self._on_lost()

    def send(self, frame: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame)

    def close(self) -> None:
        """Stop reading and drop the connection; no callback follows."""
        self._broken = True
        if self._transport is not None:
            self._transport.abort()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._large is not None:
            return memoryview(self._large)[self._large_filled :]
        if self._end == len(self._buffer):
            pending = self._end - self._start
            self._buffer[:pending] = self._buffer[self._start : self._end]
            self._start, self._end = 0, pending
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._broken:
            return
        try:
            if self._large is not None:
                self._large_filled += nbytes
                if self._large_filled == len(self._large):
                    body, kind = memoryview(self._large), self._large_kind
                    self._large = None
                    self._on_frame(kind, body)
                return
            self._end += nbytes
            self._split()
        except ProtocolError as exc:
            self._broken = True
            self._on_violation(str(exc))

    def _split(self) -> None:
        while not self._broken and self._end - self._start >= HEADER.size:
            size, raw_kind = HEADER.unpack_from(self._buffer, self._start)
            if raw_kind not in _KINDS:
                raise ProtocolError(f"unknown frame kind {raw_kind}")
            if size > self.max_frame:
                raise ProtocolError(f"frame of {size} bytes over the bound of {self.max_frame}")
            body_start = self._start + HEADER.size
            available = self._end - body_start
            if available >= size:
                self._start = body_start + size
                self._on_frame(Kind(raw_kind), self._view[body_start : self._start])
            elif HEADER.size + size > len(self._buffer):
                self._large = bytearray(size)
                self._large[:available] = self._view[body_start : self._end]
                self._large_filled, self._large_kind = available, Kind(raw_kind)
                self._start = self._end = 0
                return
            else:
                break
        if self._start == self._end:
            self._start = self._end = 0
