"""The http_request host functions in a real executor, with the server's answers canned."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.build import wat
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import HostCall, Job, Outcome, OutcomeKind
from wasmlet.runtime.wire import pack_http_reply

HEAD = b'{"url": "http://upstream.test/"}'


def run_with(answer: Callable[[HostCall], bytes], tmp_path: Path) -> tuple[Outcome, list[HostCall]]:
    calls: list[HostCall] = []

    def call_host(call: HostCall) -> bytes:
        calls.append(call)
        return answer(call)

    module = ModuleCompiler(tmp_path).compile(wat("http_get"))
    job = Job(
        "inv", module.key, str(module.path), HEAD, {}, ("fn",), 5000, 64 << 20, 1 << 20, 1 << 16
    )
    with Executor(call_host=call_host) as executor:
        return executor.run(job), calls


def error(error_type: str, **extra: object) -> bytes:
    head = {"error": {"type": error_type, "message": "m", **extra}}
    return pack_http_reply(json.dumps(head).encode(), b"")


def test_the_response_body_reaches_the_guest(tmp_path: Path) -> None:
    head = b'{"status":200,"body_length":4,"headers":[]}'
    outcome, calls = run_with(lambda call: pack_http_reply(head, b"\x00ok\xff"), tmp_path)
    assert outcome.kind is OutcomeKind.OK and outcome.stdout == b"\x00ok\xff"
    (call,) = calls
    assert call.kind == "http_request" and call.text == HEAD.decode() and call.body == b""


@pytest.mark.parametrize("error_type", ["forbidden_host", "connect_failed", "timeout"])
def test_the_guest_sees_the_error_and_goes_on(tmp_path: Path, error_type: str) -> None:
    outcome, _ = run_with(lambda call: error(error_type), tmp_path)
    assert outcome.kind is OutcomeKind.OK and outcome.status == 502
    assert json.loads(outcome.stdout)["error"]["type"] == error_type
    assert outcome.host_error == (error_type, "m") and outcome.host_call == "http_request"
    assert outcome.last_host_call_failed


def test_the_function_deadline_in_a_request_ends_the_invocation_as_a_timeout(
    tmp_path: Path,
) -> None:
    """The server's deadline comes a little before the worker's own: the guest must not
    get that moment to answer as if nothing happened."""
    outcome, _ = run_with(lambda call: error("timeout", function_deadline=True), tmp_path)
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert outcome.stdout == b""
