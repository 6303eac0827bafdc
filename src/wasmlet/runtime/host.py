"""Host functions a guest may import from module `wasmlet` (guest ABI v1).

Signatures (all pointers and lengths are i32 into the guest's exported `memory`):

    log(level: i32, ptr: i32, len: i32) -> i32
        level 0 debug, 1 info, 2 warn, 3 error. Returns 0, or -1 on a bad argument.
    set_status(code: i32) -> i32
        HTTP status of the response (100..599). Returns 0, or -1 when out of range.
    set_header(name_ptr: i32, name_len: i32, value_ptr: i32, value_len: i32) -> i32
        Adds a response header. Returns 0, or -1 for an invalid name or value.
    db_query(sql_ptr: i32, sql_len: i32, params_ptr: i32, params_len: i32) -> i32
        Runs one SQL statement with a JSON array of parameters ($1, $2, ...), committed
        on its own. Returns the length of the result JSON the host now holds
        ({"rows": [...], "row_count": n} or {"error": {"type", "message"}}), or -1.
    db_result(buf_ptr: i32, buf_len: i32) -> i32
        Copies that result JSON into the buffer; the number of bytes copied, or -1.
    http_request, http_result, http_body
        Outbound HTTP through the server (see `host_http`).

`guest/wasmlet.h` declares the same for C.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from wasmlet.runtime.outcome import HostCall, LogLevel
from wasmlet.runtime.wire import pack_http_reply

HOST_MODULE = "wasmlet"
MAX_LOG_LINE = 8192
MAX_HEADERS = 64
_LEVELS = (LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_FORBIDDEN_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "x-request-id"}
)


HostCaller = Callable[[HostCall], bytes]


class DeadlineReached(Exception):
    """Raised in a host function whose call ran into the function's deadline: the guest
    does not resume, and the invocation ends as a timeout."""


def no_database(call: HostCall) -> bytes:
    """The answer of a runtime without a server: no database, no outbound HTTP."""
    if call.kind == "http_request":
        error = {"type": "connect_failed", "message": "no outbound HTTP in this runtime"}
        return pack_http_reply(json.dumps({"error": error}).encode(), b"")
    return json.dumps(
        {"error": {"type": "db_unavailable", "message": "no database in this runtime"}}
    ).encode()


def host_call_failed(call: HostCall, message: str) -> bytes:
    """The answer when the server fails to answer a call: the call's "unavailable" error."""
    if call.kind == "http_request":
        error = {"type": "connect_failed", "message": message}
        return pack_http_reply(json.dumps({"error": error}).encode(), b"")
    return json.dumps({"error": {"type": "db_unavailable", "message": message}}).encode()


@dataclass
class HostState:
    """What the host functions of one invocation have recorded."""

    log_budget: int
    invocation_id: str = ""
    function: str = ""
    deadline: float = 0.0
    call_host: HostCaller = no_database
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple[LogLevel, str]] = field(default_factory=list)
    logs_truncated: bool = False
    db_result: bytes = b""
    http_head: bytes = b""
    http_body: bytes = b""
    host_error: tuple[str, str] | None = None
    host_call: str = ""
    last_host_call_failed: bool = False

    def record_result(self, kind: str, result: bytes) -> None:
        """Note whether the host call `kind` answered `result` failed (an error object)."""
        self.last_host_call_failed = result.startswith(b'{"error"')
        if self.last_host_call_failed:
            detail = json.loads(result)["error"]
            self.host_error = (str(detail["type"]), str(detail["message"]))
            self.host_call = kind

    def add_log(self, level: LogLevel, line: str) -> None:
        if self.log_budget <= 0:
            self.logs_truncated = True
            return
        line = line[: min(MAX_LOG_LINE, self.log_budget)]
        self.log_budget -= len(line)
        self.logs.append((level, line))


def write_guest(caller: wasmtime.Caller, ptr: int, length: int, data: bytes) -> int:
    """Copy up to `length` bytes of `data` to the guest at `ptr`; the count, or -1."""
    ptr, length = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    memory = caller.get("memory")
    data = data[:length]
    if not isinstance(memory, wasmtime.Memory) or ptr + len(data) > memory.data_len(caller):
        return -1
    if data:
        memory.write(caller, data, ptr)
    return len(data)


def read_guest(caller: wasmtime.Caller, ptr: int, length: int) -> bytes | None:
    # i32 arguments arrive signed; guest pointers and lengths are unsigned.
    ptr, length = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory) or ptr + length > memory.data_len(caller):
        return None
    return bytes(memory.read(caller, ptr, ptr + length))


def define_host_functions(linker: wasmtime.Linker, state: Callable[[], HostState]) -> None:
    from wasmlet.runtime.host_http import define_http_functions  # it builds on this module

    i32 = wasmtime.ValType.i32()

    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> int:
        data = read_guest(caller, ptr, length)
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
        name, value = read_guest(caller, np, nl), read_guest(caller, vp, vl)
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

    def db_query(caller: wasmtime.Caller, sp: int, sl: int, pp: int, pl: int) -> int:
        sql, raw_params = read_guest(caller, sp, sl), read_guest(caller, pp, pl)
        if sql is None or raw_params is None:
            return -1
        current = state()
        try:
            params = json.loads(raw_params) if raw_params.strip() else []
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            params, problem = None, f"params are not JSON: {exc}"
        else:
            problem = "" if isinstance(params, list) else "params must be a JSON array"
        if problem:
            result = json.dumps({"error": {"type": "query_error", "message": problem}}).encode()
        else:
            assert isinstance(params, list)
            call = HostCall(
                "db_query", current.invocation_id, current.function,
                sql.decode("utf-8", "replace"), params, current.deadline,
            )  # fmt: skip
            result = current.call_host(call)
        current.db_result = result
        current.record_result("db_query", result)
        return len(result)

    def db_result(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        return write_guest(caller, ptr, length, state().db_result)

    linker.define_func(
        HOST_MODULE, "log", wasmtime.FuncType([i32, i32, i32], [i32]), log, access_caller=True
    )
    linker.define_func(
        HOST_MODULE,
        "db_query",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        db_query,
        access_caller=True,
    )
    linker.define_func(
        HOST_MODULE,
        "db_result",
        wasmtime.FuncType([i32, i32], [i32]),
        db_result,
        access_caller=True,
    )
    linker.define_func(HOST_MODULE, "set_status", wasmtime.FuncType([i32], [i32]), set_status)
    linker.define_func(
        HOST_MODULE,
        "set_header",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        set_header,
        access_caller=True,
    )
    define_http_functions(linker, state)
