"""How the client reads an answer, or the lack of one, into the one error tree."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from wasmlet import errors
from wasmlet.client.transport import connection_failure, error_from_response


def answer(status: int, body: Any, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, content=json.dumps(body).encode(), headers={
        "content-type": "application/json", **headers})  # fmt: skip


def wasmlet_body(error_type: str, retriable: bool | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": error_type, "message": "m", "function": "f"}
    if retriable is not None:
        detail["retriable"] = retriable
    return {"error": detail}


def test_a_wasmlet_body_becomes_its_class() -> None:
    error = error_from_response(answer(507, wasmlet_body("memory_limit_exceeded", False)))
    assert type(error) is errors.MemoryLimitExceeded
    assert error.status == 507 and not error.retriable and error.function == "f"
    timeout = error_from_response(answer(504, wasmlet_body("timeout", True)))
    assert type(timeout) is errors.FunctionTimeout and timeout.retriable


def test_the_body_retriable_flag_picks_the_transient_host_error_and_is_honoured() -> None:
    transient = error_from_response(answer(500, wasmlet_body("host_function_error", True)))
    assert type(transient) is errors.TransientHostFunctionError and transient.retriable
    lasting = error_from_response(answer(500, wasmlet_body("host_function_error", False)))
    assert type(lasting) is errors.HostFunctionError and not lasting.retriable
    told = error_from_response(answer(504, wasmlet_body("timeout", False)))
    assert type(told) is errors.FunctionTimeout and not told.retriable


def test_a_proxy_html_page_is_an_unexpected_response_with_its_status() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    error = error_from_response(answer(502, page, **{"content-type": "text/html"}))
    assert type(error) is errors.UnexpectedResponse
    assert error.status == 502 and not error.retriable and error.error_type is None
    assert "502" in error.message and "<html>" not in error.message
    assert isinstance(error, errors.CallFailed) and not isinstance(error, errors.ServerError)


@pytest.mark.parametrize("status", [405, 404, 500, 504])
def test_json_that_is_not_a_wasmlet_error_body_is_unexpected(status: int) -> None:
    bodies: list[Any] = [{"detail": "Method Not Allowed"}, {"error": "x"}, [1, 2], {"error": {}}]
    for body in bodies:
        error = error_from_response(answer(status, body))
        assert type(error) is errors.UnexpectedResponse and error.status == status


def test_an_unknown_type_is_unexpected_not_a_500_function_error() -> None:
    error = error_from_response(answer(418, wasmlet_body("brand_new_kind", True)))
    assert type(error) is errors.UnexpectedResponse
    assert error.status == 418 and error.error_type == "brand_new_kind" and error.retriable
    forged = error_from_response(answer(500, wasmlet_body("connection_failed")))
    assert type(forged) is errors.UnexpectedResponse  # client-side kinds never come in a body


def test_retry_after_is_read_only_as_a_small_number_of_seconds() -> None:
    def retry_after(value: str) -> int | None:
        page = httpx.Response(503, content=b"busy", headers=[
            (b"retry-after", value.encode("latin-1"))])  # fmt: skip
        return error_from_response(page).retry_after

    assert retry_after("7") == 7
    assert retry_after("\u00b2") is None  # a digit to str.isdigit, not to int()
    assert retry_after("99999999999999999999") is None
    assert retry_after("-1") is None


def test_no_answer_is_not_sent_or_lost_as_httpcore_tells_them_apart() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/x")
    not_sent: list[httpx.TransportError] = [
        httpx.ConnectError("refused", request=request),
        httpx.ConnectTimeout("slow", request=request),
        httpx.PoolTimeout("busy", request=request),
    ]
    for exc in not_sent:
        assert type(connection_failure(exc)) is errors.RequestNotSent
    sent: list[httpx.TransportError] = [
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("closed", request=request),
        httpx.ReadError("reset", request=request),
        httpx.WriteTimeout("slow", request=request),
    ]
    for exc in sent:
        lost = connection_failure(exc)
        assert type(lost) is errors.ResponseLost and not lost.retriable
    assert issubclass(errors.RequestNotSent, errors.ConnectionFailed)
