"""The client's public surface, pinned: a name added or removed here is a decision."""

from __future__ import annotations

import wasmlet.client
from wasmlet import errors


def test_exported_members() -> None:
    assert sorted(wasmlet.client.__all__) == sorted(
        [
            "AsyncWasmletClient", "CallFailed", "CircuitOpen", "ConnectionFailed",
            "DbUnavailable", "FunctionError", "FunctionNotFound", "FunctionTimeout",
            "HostFunctionError", "InvalidConfig", "InvalidName", "InvalidPayload",
            "InvalidSource", "InvalidTrigger", "InvalidWasm", "InvokeResponse",
            "MemoryLimitExceeded", "MethodNotAllowed", "ModuleUnavailable", "PayloadTooLarge",
            "RequestNotSent", "ResponseLost", "RetryPolicy", "RuntimeCrash", "TooManyRequests",
            "Unauthorized", "UnexpectedResponse", "UserCodeError", "WasmletClient",
        ]
    )  # fmt: skip
    for name in wasmlet.client.__all__:
        assert hasattr(wasmlet.client, name), name


def test_every_error_the_client_exports_is_one_of_the_tree() -> None:
    for name in wasmlet.client.__all__:
        member = getattr(wasmlet.client, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, errors.FunctionError), name
            assert member is getattr(errors, name)  # the same class, not a copy
