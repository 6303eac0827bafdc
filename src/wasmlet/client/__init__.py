"""Python client for a wasmlet server, sync and async, on httpx.

Failures raise the classes of `wasmlet.errors` (`FunctionTimeout`,
`MemoryLimitExceeded`, ...), built from the server's error body.
"""

from wasmlet.client.client import AsyncWasmletClient, InvokeResponse, WasmletClient
from wasmlet.client.retry import RetryPolicy
from wasmlet.client.transport import ConnectionFailed
from wasmlet.errors import (
    CircuitOpen,
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
    ModuleUnavailable,
    PayloadTooLarge,
    RuntimeCrash,
    TooManyRequests,
    Unauthorized,
    UserCodeError,
)

__all__ = [
    "AsyncWasmletClient",
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
    "ModuleUnavailable",
    "PayloadTooLarge",
    "RetryPolicy",
    "RuntimeCrash",
    "TooManyRequests",
    "Unauthorized",
    "UserCodeError",
    "WasmletClient",
]
