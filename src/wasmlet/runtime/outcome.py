"""What goes into a worker (a `Job`) and what comes back (an `Outcome`).

Both cross a process boundary as `wire` frames, so they hold plain data only. The executor
classifies what happened into an `OutcomeKind`; turning a kind into a caller-facing
error is the invoker's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class OutcomeKind(StrEnum):
    OK = "ok"
    EXIT_ERROR = "exit_error"
    TRAP = "trap"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    RUNTIME_CRASH = "runtime_crash"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Job:
    invocation_id: str
    module_key: str
    module_path: str
    stdin: bytes
    env: dict[str, str]
    argv: tuple[str, ...]
    timeout_ms: int
    memory_limit_bytes: int
    stdout_limit: int
    stderr_limit: int
    allowed_hosts: tuple[str, ...] = ()  # kept by the server for host calls; never sent


@dataclass(frozen=True, slots=True)
class HostCall:
    """A request from a guest's host import that the server answers.

    `kind` is the import: for `db_query`, `text` is the SQL and `params` its parameters;
    for `http_request`, `text` is the request head (JSON) and `body` the request body.
    The server fills in the invocation id, function, deadline and allow-list from the
    job it sent, never from what the worker says.
    """

    kind: str
    invocation_id: str
    function: str
    text: str
    params: list[Any]
    deadline: float  # time.monotonic(), shared by every process on the machine
    body: bytes = b""
    allowed_hosts: tuple[str, ...] = ()


@dataclass(slots=True)
class Outcome:
    kind: OutcomeKind
    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stderr_truncated: bool = False
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    logs: list[tuple[LogLevel, str]] = field(default_factory=list)
    message: str = ""
    duration_ms: float = 0.0
    host_error: tuple[str, str] | None = None  # the latest failed host call: (type, message)
    last_host_call_failed: bool = False
    host_call: str = ""  # the import whose failure `host_error` is: db_query, http_request
    ran: bool = True  # False when no worker was free in time: the guest never started

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK
