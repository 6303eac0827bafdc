"""Python client for a wasmlet server, sync and async, on httpx.

Failures raise the classes of the one tree in `wasmlet.errors` (`FunctionTimeout`,
`MemoryLimitExceeded`, ...), built from the server's error body; an answer that is
not wasmlet's (a proxy's 502 page) is `UnexpectedResponse` with its status, and no
answer at all is `ConnectionFailed` (`RequestNotSent` or `ResponseLost`).
"""

from wasmlet.client.client import AsyncWasmletClient, InvokeResponse, WasmletClient
from wasmlet.client.retry import RetryPolicy
from wasmlet.errors import (
    CallFailed,
    CircuitOpen,
    ConnectionFailed,
    DbUnavailable,
    FunctionError,
    FunctionNotFound,
    FunctionTimeout,
    HostFunctionError,
    InvalidConfig,
    InvalidName,
    InvalidPayload,
    InvalidSource,
    InvalidTrigger,
    InvalidWasm,
    MemoryLimitExceeded,
    MethodNotAllowed,
    ModuleUnavailable,
    PayloadTooLarge,
    RequestNotSent,
    ResponseLost,
    RuntimeCrash,
    TooManyRequests,
    Unauthorized,
    UnexpectedResponse,
    UserCodeError,
)

__all__ = [
    "AsyncWasmletClient",
    "CallFailed",
    "CircuitOpen",
    "ConnectionFailed",
    "DbUnavailable",
    "FunctionError",
    "FunctionNotFound",
    "FunctionTimeout",
    "HostFunctionError",
    "InvalidConfig",
    "InvalidName",
    "InvalidPayload",
    "InvalidSource",
    "InvalidTrigger",
    "InvalidWasm",
    "InvokeResponse",
    "MemoryLimitExceeded",
    "MethodNotAllowed",
    "ModuleUnavailable",
    "PayloadTooLarge",
    "RequestNotSent",
    "ResponseLost",
    "RetryPolicy",
    "RuntimeCrash",
    "TooManyRequests",
    "Unauthorized",
    "UnexpectedResponse",
    "UserCodeError",
    "WasmletClient",
]
