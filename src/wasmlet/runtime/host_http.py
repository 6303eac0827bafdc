"""The outbound HTTP host functions of module `wasmlet` (guest ABI v1).

    http_request(head_ptr: i32, head_len: i32, body_ptr: i32, body_len: i32) -> i32
        Sends one HTTP request through the server. The head is JSON
        {"method", "url", "headers"}; the body is raw bytes (an empty range: none).
        Returns the length of the response head JSON the host now holds,
        {"status": n, "headers": [[name, value], ...], "body_length": n} or
        {"error": {"type", "message"}}, or -1 for a range outside memory.
    http_result(buf_ptr: i32, buf_len: i32) -> i32
        Copies that head JSON into the buffer; the number of bytes copied, or -1.
    http_body(buf_ptr: i32, buf_len: i32) -> i32
        Copies the response body; the number of bytes copied, or -1.

The worker only forwards: the server checks the request against the function's
`allowed_hosts` and makes it (`wasmlet.outbound`). The guest is blocked meanwhile, at
most until its deadline; a request that reaches the function's deadline ends the
invocation there (a timeout) instead of handing the guest a moment it does not have.
The server's and the worker's clocks of the deadline differ by the time a job takes to
start, so the server says which it was (`function_deadline`) rather than the worker
guessing from its own clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import wasmtime

from wasmlet.runtime.host import (
    HOST_MODULE,
    DeadlineReached,
    HostState,
    read_guest,
    write_guest,
)
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.wire import MAX_HOST_CALL_BYTES, unpack_http_reply

KIND = "http_request"
MAX_HEAD_BYTES = 256 << 10
MAX_BODY_BYTES = MAX_HOST_CALL_BYTES - MAX_HEAD_BYTES - 1024


def error_reply(error_type: str, message: str) -> bytes:
    return json.dumps({"error": {"type": error_type, "message": message}}).encode()


def define_http_functions(linker: wasmtime.Linker, state: Callable[[], HostState]) -> None:
    i32 = wasmtime.ValType.i32()

    def http_request(caller: wasmtime.Caller, hp: int, hl: int, bp: int, bl: int) -> int:
        head, body = read_guest(caller, hp, hl), read_guest(caller, bp, bl)
        if head is None or body is None:
            return -1
        current = state()
        if len(head) > MAX_HEAD_BYTES:
            reply_head, reply_body = error_reply("too_large", "request head over 256 KiB"), b""
        elif len(body) > MAX_BODY_BYTES:
            reply_head = error_reply("too_large", f"request body over {MAX_BODY_BYTES} bytes")
            reply_body = b""
        else:
            call = HostCall(
                KIND, current.invocation_id, current.function,
                head.decode("utf-8", "replace"), [], current.deadline, body,
            )  # fmt: skip
            reply_head, reply_body = unpack_http_reply(current.call_host(call))
        current.http_head, current.http_body = reply_head, reply_body
        current.record_result(KIND, reply_head)
        if reply_head.startswith(b'{"error"') and json.loads(reply_head)["error"].get(
            "function_deadline"
        ):
            raise DeadlineReached("deadline passed during http_request")
        return len(reply_head)

    def http_result(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        return write_guest(caller, ptr, length, state().http_head)

    def http_body(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        return write_guest(caller, ptr, length, state().http_body)

    linker.define_func(
        HOST_MODULE,
        KIND,
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        http_request,
        access_caller=True,
    )
    for name, func in (("http_result", http_result), ("http_body", http_body)):
        linker.define_func(
            HOST_MODULE, name, wasmtime.FuncType([i32, i32], [i32]), func, access_caller=True
        )
