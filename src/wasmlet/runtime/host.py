"""Host functions a guest may import from module `wasmlet` (guest ABI v1).

Signatures (all pointers and lengths are i32 into the guest's exported `memory`):

    log(level: i32, ptr: i32, len: i32) -> i32
        level 0 debug, 1 info, 2 warn, 3 error. Returns 0, or -1 on a bad argument.
    set_status(code: i32) -> i32
        HTTP status of the response (100..599). Returns 0, or -1 when out of range.
    set_header(name_ptr: i32, name_len: i32, value_ptr: i32, value_len: i32) -> i32
        Adds a response header. Returns 0, or -1 for an invalid name or value.

`guest/wasmlet.h` declares the same for C.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from wasmlet.runtime.outcome import LogLevel

HOST_MODULE = "wasmlet"
MAX_LOG_LINE = 8192
MAX_HEADERS = 64
_LEVELS = (LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_FORBIDDEN_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "x-request-id"}
)


@dataclass
class HostState:
    """What the host functions of one invocation have recorded."""

    log_budget: int
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple[LogLevel, str]] = field(default_factory=list)
    logs_truncated: bool = False

    def add_log(self, level: LogLevel, line: str) -> None:
        if self.log_budget <= 0:
            self.logs_truncated = True
            return
        line = line[: min(MAX_LOG_LINE, self.log_budget)]
        self.log_budget -= len(line)
        self.logs.append((level, line))


def _read(caller: wasmtime.Caller, ptr: int, length: int) -> bytes | None:
    # i32 arguments arrive signed; guest pointers and lengths are unsigned.
    ptr, length = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory) or ptr + length > memory.data_len(caller):
        return None
    return bytes(memory.read(caller, ptr, ptr + length))


def define_host_functions(linker: wasmtime.Linker, state: Callable[[], HostState]) -> None:
    i32 = wasmtime.ValType.i32()

    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> int:
        data = _read(caller, ptr, length)
        if data is None or not 0 <= level < len(_LEVELS):
            return -1
        state().add_log(_LEVELS[level], data.decode("utf-8", "replace"))
        return 0

    def set_status(code: int) -> int:
        if not 100 <= code <= 599:
            return -1
        state().status = code
        return 0

    def set_header(caller: wasmtime.Caller, np: int, nl: int, vp: int, vl: int) -> int:
        name, value = _read(caller, np, nl), _read(caller, vp, vl)
        if name is None or value is None:
            return -1
        text_name, text_value = name.decode("latin-1"), value.decode("utf-8", "replace")
        current = state()
        if (
            not _HEADER_NAME.match(text_name)
            or text_name.lower() in _FORBIDDEN_HEADERS
            or any(ch in text_value for ch in "\r\n\0")
            or len(current.headers) >= MAX_HEADERS
        ):
            return -1
        current.headers.append((text_name, text_value))
        return 0

    linker.define_func(
        HOST_MODULE, "log", wasmtime.FuncType([i32, i32, i32], [i32]), log, access_caller=True
    )
    linker.define_func(HOST_MODULE, "set_status", wasmtime.FuncType([i32], [i32]), set_status)
    linker.define_func(
        HOST_MODULE,
        "set_header",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        set_header,
        access_caller=True,
    )
