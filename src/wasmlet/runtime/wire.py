"""The messages between the server and its workers: data only, strictly checked.

A frame is a 5-byte header (body length as a little-endian u32, then a `Kind` byte)
and a body. Jobs, host calls and outcomes are msgpack arrays of plain values; a host
reply and READY are raw bytes. Nothing is ever unpickled: a worker runs guest code,
so the server decodes what a worker sends as if an attacker wrote it. Any frame that
is not exactly what the protocol allows at that moment (an unknown kind, a wrong
field count or type, an unknown enum value, a frame over its size bound) raises
`ProtocolError`, and the pool kills the worker.

A host call carries only its arguments: the server takes the invocation id, the
function, the deadline and the allow-list from the job it sent, never from the worker.
An `http_request` reply is a u32 length, the response head (JSON) and the body.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import msgpack

from wasmlet.runtime.outcome import HostCall, Job, LogLevel, Outcome, OutcomeKind

HEADER = struct.Struct("<IB")
_HEAD_LENGTH = struct.Struct("<I")
MAX_HOST_CALL_BYTES = 8 << 20
"""Largest host-call body (SQL and parameters); a worker refuses larger queries itself."""
OUTCOME_SLACK_BYTES = 1 << 20
"""Headers, message and framing on top of an outcome's stdout and log bytes."""
MAX_HEADERS = 64
MAX_HEADER_BYTES = 64 << 10


class Kind(IntEnum):
    READY = 1
    JOB = 2
    HOST_CALL = 3
    HOST_REPLY = 4
    OUTCOME = 5


class ProtocolError(Exception):
    """A peer sent something the protocol does not allow."""


def outcome_limit(job: Job) -> int:
    """The largest outcome body an honest worker sends for `job`.

    Log lines count against the stderr budget in characters (up to 4 bytes each),
    and each line costs a few bytes of framing, at most one line per character.
    """
    return job.stdout_limit + 17 * job.stderr_limit + OUTCOME_SLACK_BYTES


def frame(kind: Kind, body: bytes) -> bytes:
    return HEADER.pack(len(body), kind) + body


def encode_job(job: Job) -> bytes:
    """A JOB frame. Raises ValueError/OverflowError for values msgpack cannot carry."""
    return frame(
        Kind.JOB,
        msgpack.packb(
            (
                job.invocation_id, job.module_key, job.module_path, job.stdin, job.env,
                job.argv, job.timeout_ms, job.memory_limit_bytes, job.stdout_limit,
                job.stderr_limit,
            )
        ),
    )  # fmt: skip


def decode_job(body: bytes | memoryview) -> Job:
    fields = _array(body, 10)
    env = fields[4]
    if type(env) is not dict or not all(type(k) is str and type(v) is str for k, v in env.items()):
        raise ProtocolError("job env must map strings to strings")
    argv = fields[5]
    if type(argv) is not list or not all(type(a) is str for a in argv):
        raise ProtocolError("job argv must be a list of strings")
    return Job(
        invocation_id=_str(fields[0]),
        module_key=_str(fields[1]),
        module_path=_str(fields[2]),
        stdin=_bytes(fields[3]),
        env=env,
        argv=tuple(argv),
        timeout_ms=_int(fields[6]),
        memory_limit_bytes=_int(fields[7]),
        stdout_limit=_int(fields[8]),
        stderr_limit=_int(fields[9]),
    )


def encode_host_call(call: HostCall) -> bytes:
    """A HOST_CALL frame with the call's kind, text, parameters and body.

    Raises ValueError/OverflowError for parameters msgpack cannot carry (an integer
    past 64 bits, nesting past 511 levels) or a body over `MAX_HOST_CALL_BYTES`.
    """
    body = msgpack.packb((call.kind, call.text, call.params, call.body))
    if len(body) > MAX_HOST_CALL_BYTES:
        raise ValueError(f"host call over {MAX_HOST_CALL_BYTES} bytes")
    return frame(Kind.HOST_CALL, body)


def decode_host_call(
    body: bytes | memoryview,
    *,
    invocation_id: str,
    function: str,
    deadline: float,
    allowed_hosts: tuple[str, ...] = (),
) -> HostCall:
    if len(body) > MAX_HOST_CALL_BYTES:
        raise ProtocolError(f"host call over {MAX_HOST_CALL_BYTES} bytes")
    kind, text, params, call_body = _array(body, 4)
    if type(params) is not list:
        raise ProtocolError("host call params must be an array")
    _check_json(params)
    return HostCall(
        _str(kind), invocation_id, function, _str(text), params, deadline, _bytes(call_body),
        allowed_hosts,
    )  # fmt: skip


def pack_http_reply(head: bytes, body: bytes) -> bytes:
    return _HEAD_LENGTH.pack(len(head)) + head + body


def unpack_http_reply(reply: bytes) -> tuple[bytes, bytes]:
    """(head, body) of an `http_request` reply; a short reply is an empty head."""
    if len(reply) < _HEAD_LENGTH.size:
        return b"", b""
    (size,) = _HEAD_LENGTH.unpack_from(reply)
    end = _HEAD_LENGTH.size + size
    return reply[_HEAD_LENGTH.size : end], reply[end:]


def encode_reply(result: bytes) -> bytes:
    return frame(Kind.HOST_REPLY, result)


def encode_outcome(outcome: Outcome) -> bytes:
    return frame(
        Kind.OUTCOME,
        msgpack.packb(
            (
                outcome.kind.value, outcome.exit_code, outcome.stdout, outcome.stderr,
                outcome.stderr_truncated, outcome.status, outcome.headers,
                [(level.value, line) for level, line in outcome.logs], outcome.message,
                outcome.duration_ms, outcome.host_error, outcome.last_host_call_failed,
                outcome.ran, outcome.host_call,
            )
        ),
    )  # fmt: skip


def decode_outcome(body: bytes | memoryview) -> Outcome:
    f = _array(body, 14)
    try:
        kind = OutcomeKind(_str(f[0]))
        logs = [(LogLevel(_str(level)), _str(line)) for level, line in _pairs(f[7])]
    except ValueError as exc:
        raise ProtocolError(f"outcome: {exc}") from None
    headers = _pairs(f[6])
    if len(headers) > MAX_HEADERS or any(
        len(name) + len(value) > MAX_HEADER_BYTES for name, value in headers
    ):
        raise ProtocolError("outcome headers over their bounds")
    status = _optional_int(f[5])
    if status is not None and not 100 <= status <= 599:
        raise ProtocolError(f"outcome status {status} out of range")
    host_error = f[10]
    if host_error is not None:
        (error_type, error_message), *_ = _pairs([host_error])
        host_error = (error_type, error_message)
    return Outcome(
        kind=kind,
        exit_code=_optional_int(f[1]),
        stdout=_bytes(f[2]),
        stderr=_bytes(f[3]),
        stderr_truncated=_bool(f[4]),
        status=status,
        headers=headers,
        logs=logs,
        message=_str(f[8]),
        duration_ms=_float(f[9]),
        host_error=host_error,
        last_host_call_failed=_bool(f[11]),
        ran=_bool(f[12]),
        host_call=_str(f[13]),
    )


def _array(body: bytes | memoryview, size: int) -> list[Any]:
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack's errors are ValueError, TypeError and its own
        raise ProtocolError(f"not a msgpack value: {type(exc).__name__}") from None
    if type(value) is not list or len(value) != size:
        raise ProtocolError(f"expected an array of {size} fields")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise ProtocolError(f"expected a string, got {type(value).__name__}")
    return value


def _bytes(value: object) -> bytes:
    if type(value) is not bytes:
        raise ProtocolError(f"expected bytes, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise ProtocolError(f"expected an integer, got {type(value).__name__}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _float(value: object) -> float:
    if type(value) is not float:
        raise ProtocolError(f"expected a float, got {type(value).__name__}")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise ProtocolError(f"expected a boolean, got {type(value).__name__}")
    return value


def _pairs(value: object) -> list[tuple[str, str]]:
    if type(value) is not list:
        raise ProtocolError("expected an array of pairs")
    pairs = []
    for item in value:
        if type(item) is not list or len(item) != 2:
            raise ProtocolError("expected a pair")
        pairs.append((_str(item[0]), _str(item[1])))
    return pairs


def _check_json(value: object) -> None:
    """`value` holds only what JSON can: null, booleans, numbers, strings, arrays, objects."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        elif kind is dict:
            for key, inner in item.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    raise ProtocolError("object keys must be strings")
                stack.append(inner)
        elif item is not None and kind not in (str, int, float, bool):
            raise ProtocolError(f"{kind.__name__} is not a JSON value")
