"""The worker protocol's codec: exact round trips, and strict refusal of anything else."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack
import pytest

from wasmlet.runtime import wire
from wasmlet.runtime.outcome import HostCall, Job, LogLevel, Outcome, OutcomeKind
from wasmlet.runtime.wire import Kind, ProtocolError

JOB = Job(
    invocation_id="inv-1",
    module_key="k" * 64,
    module_path="/data/modules/x.cwasm",
    stdin=bytes(range(256)),
    env={"WASMLET_FUNCTION": "f", "SECRET_TOKEN": "é✓"},
    argv=("f",),
    timeout_ms=1500,
    memory_limit_bytes=128 << 20,
    stdout_limit=6 << 20,
    stderr_limit=64 << 10,
)
OUTCOME = Outcome(
    kind=OutcomeKind.EXIT_ERROR,
    exit_code=3,
    stdout=b"\x00body\xff",
    stderr=b"err",
    stderr_truncated=True,
    status=418,
    headers=[("x-a", "1"), ("set-cookie", "b=2")],
    logs=[(LogLevel.WARN, "careful ✓"), (LogLevel.DEBUG, "")],
    message="exited with code 3",
    duration_ms=1.25,
    host_error=("db_unavailable", "down"),
    last_host_call_failed=True,
    ran=True,
    host_call="db_query",
)


def split(frame: bytes) -> tuple[Kind, bytes]:
    size, kind = wire.HEADER.unpack_from(frame)
    assert len(frame) == wire.HEADER.size + size
    return Kind(kind), frame[wire.HEADER.size :]


def outcome_fields(**changes: Any) -> list[Any]:
    _, body = split(wire.encode_outcome(OUTCOME))
    fields: list[Any] = msgpack.unpackb(body)
    names = [
        "kind", "exit_code", "stdout", "stderr", "stderr_truncated", "status", "headers",
        "logs", "message", "duration_ms", "host_error", "last_host_call_failed", "ran",
        "host_call",
    ]  # fmt: skip
    for name, value in changes.items():
        fields[names.index(name)] = value
    return fields


def test_job_round_trips() -> None:
    kind, body = split(wire.encode_job(JOB))
    assert kind is Kind.JOB
    assert wire.decode_job(memoryview(body)) == JOB


def test_outcome_round_trips() -> None:
    kind, body = split(wire.encode_outcome(OUTCOME))
    assert kind is Kind.OUTCOME
    assert wire.decode_outcome(body) == OUTCOME
    assert wire.decode_outcome(split(wire.encode_outcome(Outcome(OutcomeKind.OK)))[1]) == Outcome(
        OutcomeKind.OK
    )


def test_host_call_carries_only_the_query_and_takes_identity_from_the_server() -> None:
    call = HostCall("db_query", "spoofed-id", "other-function", "SELECT $1", [1, "a", None], 9e9)
    kind, body = split(wire.encode_host_call(call))
    assert kind is Kind.HOST_CALL
    assert b"spoofed" not in body and b"other-function" not in body
    decoded = wire.decode_host_call(body, invocation_id="inv-1", function="f", deadline=5.0)
    assert decoded == HostCall("db_query", "inv-1", "f", "SELECT $1", [1, "a", None], 5.0)


def test_http_call_carries_its_body_and_takes_the_allow_list_from_the_server() -> None:
    call = HostCall(
        "http_request", "i", "f", '{"url": "http://a"}', [], 9e9, b"\x00body",
        allowed_hosts=("http://*",),
    )  # fmt: skip
    _, body = split(wire.encode_host_call(call))
    assert b"http://*" not in body
    decoded = wire.decode_host_call(
        body, invocation_id="i", function="f", deadline=1.0, allowed_hosts=("https://a",)
    )
    assert decoded.body == b"\x00body" and decoded.allowed_hosts == ("https://a",)


def test_http_reply_packs_head_and_body() -> None:
    reply = wire.pack_http_reply(b'{"status":200}', b"\x00\xffbody")
    assert wire.unpack_http_reply(reply) == (b'{"status":200}', b"\x00\xffbody")
    assert wire.unpack_http_reply(b"") == (b"", b"")


def test_host_call_params_msgpack_cannot_carry_are_refused_in_the_worker() -> None:
    call = HostCall("db_query", "i", "f", "SELECT $1", [2**70], 0.0)
    with pytest.raises(OverflowError):
        wire.encode_host_call(call)
    huge = replace(call, params=["x" * (wire.MAX_HOST_CALL_BYTES + 1)])
    with pytest.raises(ValueError, match="host call over"):
        wire.encode_host_call(huge)


def test_a_pickle_is_not_a_frame_body() -> None:
    evil = pickle.dumps(OUTCOME)
    for decode in (wire.decode_outcome, wire.decode_job):
        with pytest.raises(ProtocolError):
            decode(evil)
    with pytest.raises(ProtocolError):
        wire.decode_host_call(evil, invocation_id="i", function="f", deadline=0.0)


BAD_OUTCOMES: dict[str, list[Any]] = {
    "unknown kind": outcome_fields(kind="exploded"),
    "bool for an int": outcome_fields(status=True),
    "int for a bool": outcome_fields(ran=1),
    "str for bytes": outcome_fields(stdout="body"),
    "bytes for a str": outcome_fields(message=b"msg"),
    "int for a float": outcome_fields(duration_ms=1),
    "status out of range": outcome_fields(status=1000),
    "unknown log level": outcome_fields(logs=[["fatal", "x"]]),
    "header triple": outcome_fields(headers=[["a", "b", "c"]]),
    "too many headers": outcome_fields(headers=[["x", "y"]] * (wire.MAX_HEADERS + 1)),
    "header too long": outcome_fields(headers=[["x", "y" * wire.MAX_HEADER_BYTES]]),
    "host error not a pair": outcome_fields(host_error=["only-type"]),
    "a field missing": outcome_fields()[:-1],
    "a field too many": [*outcome_fields(), None],
}


@pytest.mark.parametrize("fields", BAD_OUTCOMES.values(), ids=BAD_OUTCOMES.keys())
def test_an_outcome_with_a_wrong_field_is_refused(fields: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        wire.decode_outcome(msgpack.packb(fields))


RAW_BODIES: dict[str, bytes] = {
    "a map, not an array": msgpack.packb({"kind": "ok"}),
    "trailing data": msgpack.packb(outcome_fields()) + b"\xc0",
    "truncated": msgpack.packb(outcome_fields())[:-3],
    "invalid utf-8 string": msgpack.packb(outcome_fields(kind="exit_error")).replace(
        b"exit_error", b"\xff" * 10
    ),
    "ext type": msgpack.packb(outcome_fields(message=msgpack.ExtType(7, b"x"))),
    "nested too deep": b"\x91" * 5000 + b"\xc0",
    "empty": b"",
}


@pytest.mark.parametrize("body", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_malformed_body_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        wire.decode_outcome(body)


BAD_PARAMS: dict[str, Any] = {
    "bytes": [b"raw"],
    "ext": [msgpack.ExtType(1, b"x")],
    "timestamp": [msgpack.Timestamp(1, 0)],
    "non-string key deep inside": [{"a": [{b"k": 1}]}],
    "not an array": {"a": 1},
}


@pytest.mark.parametrize("params", BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_host_call_params_must_be_json_values(params: Any) -> None:
    body = msgpack.packb(["db_query", "SELECT 1", params])
    with pytest.raises(ProtocolError):
        wire.decode_host_call(body, invocation_id="i", function="f", deadline=0.0)


def test_a_host_call_over_its_bound_is_refused_unread() -> None:
    body = msgpack.packb(["db_query", "x" * wire.MAX_HOST_CALL_BYTES, []])
    with pytest.raises(ProtocolError, match="over"):
        wire.decode_host_call(body, invocation_id="i", function="f", deadline=0.0)


BAD_JOBS: dict[str, Callable[[list[Any]], None]] = {
    "env value not a string": lambda f: f.__setitem__(4, {"A": 1}),
    "argv not a list": lambda f: f.__setitem__(5, "f"),
    "timeout a float": lambda f: f.__setitem__(6, 1.5),
}


@pytest.mark.parametrize("change", BAD_JOBS.values(), ids=BAD_JOBS.keys())
def test_a_malformed_job_is_refused(change: Callable[[list[Any]], None]) -> None:
    fields: list[Any] = msgpack.unpackb(split(wire.encode_job(JOB))[1])
    change(fields)
    with pytest.raises(ProtocolError):
        wire.decode_job(msgpack.packb(fields))
