"""The exception tree: one status, type and retry decision per failure kind."""

from __future__ import annotations

from wasmlet import errors


def test_every_documented_type_has_its_status() -> None:
    expected = {
        "invalid_wasm": 400, "invalid_name": 400, "invalid_trigger": 400,
        "invalid_config": 400, "invalid_payload": 400, "unauthorized": 401,
        "function_not_found": 404, "payload_too_large": 413, "too_many_requests": 429,
        "function_error": 500, "host_function_error": 500, "runtime_crash": 500,
        "circuit_open": 503, "db_unavailable": 503, "module_unavailable": 503, "timeout": 504,
        "memory_limit_exceeded": 507,
    }  # fmt: skip
    for error_type, status in expected.items():
        cls = errors.error_class_for_type(error_type)
        assert cls is not None and cls.type == error_type
        assert cls.status == status, error_type


def test_retriable_kinds_match_the_spec() -> None:
    assert errors.FunctionTimeout.retriable
    assert errors.DbUnavailable.retriable
    assert errors.ModuleUnavailable.retriable
    assert not errors.MemoryLimitExceeded.retriable
    assert not errors.InvalidWasm.retriable
    assert not errors.UserCodeError.retriable


def test_client_side_kinds_are_in_the_tree_but_never_read_from_a_body() -> None:
    for cls in (errors.ConnectionFailed, errors.RequestNotSent, errors.ResponseLost):
        assert issubclass(cls, errors.CallFailed) and issubclass(cls, errors.FunctionError)
        assert errors.error_class_for_type(cls.type) is None
    assert issubclass(errors.UnexpectedResponse, errors.CallFailed)
    assert issubclass(errors.MethodNotAllowed, errors.ClientError)
    assert errors.error_class_for_type("method_not_allowed") is errors.MethodNotAllowed
    assert errors.error_class_for_type("no_such_type") is None
    assert errors.RequestNotSent.retriable and not errors.ResponseLost.retriable


def test_default_message_is_the_docstring() -> None:
    assert errors.FunctionNotFound().message == "Function not found"
    assert errors.TooManyRequests(retry_after=3).headers() == {"Retry-After": "3"}
