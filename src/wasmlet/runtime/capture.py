"""In-memory capture of a guest's stdout and stderr through memfds.

wasmtime writes the guest's streams to a file it opens by path; a memfd's
`/proc/self/fd/N` path gives it an anonymous in-memory file, opened (and truncated)
afresh for every invocation. Unlike `stdout_custom` callbacks, which wasmtime runs on
its own threads, this costs no thread hop per write.
"""

from __future__ import annotations

import os


class MemfdCapture:
    def __init__(self, name: str) -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self.path = f"/proc/self/fd/{self.fd}"

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self, limit: int) -> tuple[bytes, bool]:
        """The first `limit` bytes written, and whether more were written."""
        size = os.fstat(self.fd).st_size
        if size == 0:
            return b"", False
        return os.pread(self.fd, min(size, limit), 0), size > limit

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
