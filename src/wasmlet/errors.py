"""The one exception tree of wasmlet.

Every failure a caller can see is a subclass of `FunctionError`. Each class carries
its HTTP status, its `type` string (the error body's `type`, the metric label and the
log field) and whether retrying can help (the body's `retriable`), so those never
disagree. A refusal of the request's fields also carries `problems`: one `Problem`
per field, the body's `errors` list::

    FunctionError                      500 function_error (root; never raised itself)
    ├── ClientError                    4xx: the request is wrong, retrying cannot help
    │   ├── InvalidWasm                400 invalid_wasm
    │   ├── InvalidSource              400 invalid_source (JavaScript that cannot be deployed)
    │   ├── InvalidName                400 invalid_name
    │   ├── InvalidTrigger             400 invalid_trigger
    │   ├── InvalidConfig              400 invalid_config
    │   ├── InvalidPayload             400 invalid_payload
    │   ├── Unauthorized               401 unauthorized
    │   ├── FunctionNotFound           404 function_not_found
    │   ├── NotFound                   404 not_found (a route or record, not a function)
    │   ├── MethodNotAllowed           405 method_not_allowed  (Allow)
    │   ├── PayloadTooLarge            413 payload_too_large
    │   └── TooManyRequests            429 too_many_requests   (Retry-After)
    ├── ServerError                    5xx: the function or the platform failed
    │   ├── UserCodeError              500 function_error      (trap, non-zero exit)
    │   ├── HostFunctionError          500 host_function_error
    │   │   └── TransientHostFunctionError 500 host_function_error (retriable: upstream down)
    │   ├── RuntimeCrash               500 runtime_crash       (retriable)
    │   ├── InternalError              500 internal_error      (a platform bug; says no more)
    │   ├── CircuitOpen                503 circuit_open        (Retry-After)
    │   ├── DbUnavailable              503 db_unavailable      (retriable, Retry-After)
    │   ├── ModuleUnavailable          503 module_unavailable  (retriable, Retry-After)
    │   ├── FunctionTimeout            504 timeout             (retriable)
    │   └── MemoryLimitExceeded        507 memory_limit_exceeded
    └── CallFailed                     the client got no wasmlet answer (raised by the client only)
        ├── ConnectionFailed           0  no answer at all
        │   ├── RequestNotSent         0  connecting failed, nothing was sent (retriable)
        │   └── ResponseLost           0  sent, the answer never came: the call may have run
        └── UnexpectedResponse         the answer's status; not a wasmlet error body (a
                                       proxy's 502 page, a 405, a type this client does not know)

`status` and `retriable` are the class's unless an instance says otherwise: the client
builds the error of an answer with the answer's status and the body's `retriable`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request or a settings file.

    `field` is where, for programs (`query.minutes`, `config.retry.max_retries`);
    `problem` is one sentence for people, naming the field as the user wrote it.
    """

    field: str
    problem: str

    def view(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class FunctionError(Exception):
    """Function error"""

    status: int = 500
    type: ClassVar[str] = "function_error"
    retriable: bool = False
    default_retry_after: ClassVar[int | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        function: str | None = None,
        retry_after: int | None = None,
        request_id: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        self.problems = tuple(problems)
        if message is None and self.problems:
            message = "; ".join(p.problem for p in self.problems)
        self.message = message or (type(self).__doc__ or "").strip().splitlines()[0]
        self.function = function
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after
        self.request_id = request_id
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}


class ClientError(FunctionError):
    """Invalid request"""

    status = 400
    type = "invalid_request"


class InvalidWasm(ClientError):
    """Invalid WebAssembly module"""

    type = "invalid_wasm"


class InvalidSource(ClientError):
    """Invalid function source"""

    type = "invalid_source"


class InvalidName(ClientError):
    """Invalid function name"""

    type = "invalid_name"


class InvalidTrigger(ClientError):
    """Invalid trigger configuration"""

    type = "invalid_trigger"


class InvalidConfig(ClientError):
    """Invalid function configuration"""

    type = "invalid_config"


class InvalidPayload(ClientError):
    """Malformed invocation payload"""

    type = "invalid_payload"


class Unauthorized(ClientError):
    """Missing or invalid API key"""

    status = 401
    type = "unauthorized"


class FunctionNotFound(ClientError):
    """Function not found"""

    status = 404
    type = "function_not_found"


class NotFound(ClientError):
    """Not found"""

    status = 404
    type = "not_found"


class MethodNotAllowed(ClientError):
    """Method not allowed"""

    status = 405
    type = "method_not_allowed"

    def __init__(self, message: str | None = None, *, allow: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.allow = tuple(allow)

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)} if self.allow else {}


class PayloadTooLarge(ClientError):
    """Payload too large"""

    status = 413
    type = "payload_too_large"


class TooManyRequests(ClientError):
    """Too many concurrent invocations"""

    status = 429
    type = "too_many_requests"
    retriable = True
    default_retry_after = 1


class ServerError(FunctionError):
    """Function error"""


class UserCodeError(ServerError):
    """Function error"""

    type = "function_error"


class HostFunctionError(ServerError):
    """Host function error"""

    type = "host_function_error"


class TransientHostFunctionError(HostFunctionError):
    """Host function error (transient)"""

    retriable = True


class RuntimeCrash(ServerError):
    """WebAssembly runtime crashed"""

    type = "runtime_crash"
    retriable = True


class InternalError(ServerError):
    """internal error"""

    type = "internal_error"


class CircuitOpen(ServerError):
    """Circuit open: the function is failing, calls are refused for now"""

    status = 503
    type = "circuit_open"


class DbUnavailable(ServerError):
    """Database unavailable"""

    status = 503
    type = "db_unavailable"
    retriable = True
    default_retry_after = 1


class ModuleUnavailable(ServerError):
    """The function's module cannot be loaded on this node"""

    status = 503
    type = "module_unavailable"
    retriable = True
    default_retry_after = 1


class FunctionTimeout(ServerError):
    """Function timeout"""

    status = 504
    type = "timeout"
    retriable = True


class MemoryLimitExceeded(ServerError):
    """Function exceeded memory limit"""

    status = 507
    type = "memory_limit_exceeded"


class CallFailed(FunctionError):
    """No wasmlet answer"""

    status = 0
    type = "call_failed"


class ConnectionFailed(CallFailed):
    """The server could not be reached"""

    type = "connection_failed"


class RequestNotSent(ConnectionFailed):
    """The server could not be reached; the request was not sent"""

    type = "request_not_sent"
    retriable = True


class ResponseLost(ConnectionFailed):
    """The request was sent but no answer came; it may have run"""

    type = "response_lost"


class UnexpectedResponse(CallFailed):
    """An answer that is not a wasmlet error"""

    type = "unexpected_response"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int,
        error_type: str | None = None,
        retriable: bool = False,
        retry_after: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, request_id=request_id)
        self.status = status
        self.error_type = error_type  # the body's `type` when it had one this client lacks
        self.retriable = retriable


def error_class_for_type(
    error_type: str, retriable: bool | None = None
) -> type[FunctionError] | None:
    """The class of an error body's `type` (and `retriable`, when it tells two classes
    apart); None for a type that is not wasmlet's."""
    found = [
        cls
        for cls in _all_subclasses(FunctionError)
        if cls.type == error_type
        and cls not in (ServerError, ClientError)
        and not issubclass(cls, CallFailed)
    ]
    for cls in found:
        if retriable is None or cls.retriable == retriable:
            return cls
    return found[0] if found else None


def _all_subclasses(cls: type[FunctionError]) -> list[type[FunctionError]]:
    found: list[type[FunctionError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def quoted(value: object, limit: int = 60) -> str:
    """User text for a message: JSON-quoted ASCII, cut at `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    shown = json.dumps(text[:limit])
    return shown[:-1] + '..."' if len(text) > limit else shown
