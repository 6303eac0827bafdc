"""The invoker: admission, a worker run, and the one place outcomes become errors.

Every trigger calls `Invoker.invoke`. It applies the concurrency limits, makes sure
the function's module is compiled on this node (`LocalModules.ensure`: a miss is
fetched and compiled), resolves the function's limits, runs the job on the worker
pool and returns an
`InvocationResult`, or raises the `FunctionError` that describes the failure. It
counts and logs every invocation, whatever its outcome.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from wasmlet.errors import (
    CircuitOpen,
    DbUnavailable,
    FunctionError,
    FunctionTimeout,
    HostFunctionError,
    InternalError,
    MemoryLimitExceeded,
    ModuleUnavailable,
    RuntimeCrash,
    ServerError,
    TooManyRequests,
    TransientHostFunctionError,
    UserCodeError,
)
from wasmlet.js.uncaught import uncaught_message
from wasmlet.observability.history import HistoryWriter, InvocationEntry
from wasmlet.outbound.request import TRANSIENT
from wasmlet.registry.models import FunctionRecord
from wasmlet.reliability.breakers import Breakers
from wasmlet.reliability.concurrency import ConcurrencyLimiter, Permit
from wasmlet.reliability.slots import FunctionSlots, LocalSlots, Slot
from wasmlet.runtime.outcome import Job, Outcome, OutcomeKind
from wasmlet.runtime.pool import WorkerPool
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics

MB = 1024 * 1024
STDERR_IN_LOG = 2048


class SecretSource(Protocol):
    async def current(self) -> Mapping[str, str]:
        """Every secret's name and value; DbUnavailable when they cannot be read, another
        exception when they cannot be opened."""


class ModuleSource(Protocol):
    async def ensure(self, key: str) -> None:
        """Return once the module `key` is compiled at its path on this node."""


@dataclass(frozen=True, slots=True)
class RuntimeDefaults:
    timeout_ms: int
    memory_mb: int
    max_response_bytes: int
    max_log_bytes: int
    retry_after_s: int


@dataclass(slots=True)
class InvocationRequest:
    function: FunctionRecord
    module_path: str
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trigger: str = "http"
    method: str = "POST"
    path: str = "/"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class InvocationResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    duration_ms: float
    outcome: Outcome


class Invoker:
    def __init__(
        self,
        pool: WorkerPool,
        limiter: ConcurrencyLimiter,
        metrics: Metrics,
        defaults: RuntimeDefaults,
        breakers: Breakers,
        history: HistoryWriter | None = None,
        modules: ModuleSource | None = None,
        slots: FunctionSlots | None = None,
        secrets: SecretSource | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.breakers = breakers
        self._secrets = secrets
        self._scrub = scrub
        self._modules = modules
        self.slots: FunctionSlots = slots or LocalSlots()
        self._history = history
        self._pool = pool
        self._limiter = limiter
        self._metrics = metrics
        self._defaults = defaults
        self._log = get_logger("invoke")

    def timeout_ms(self, function: FunctionRecord) -> int:
        return function.config.timeout_ms or self._defaults.timeout_ms

    def memory_mb(self, function: FunctionRecord) -> int:
        return function.config.memory_mb or self._defaults.memory_mb

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        function = request.function
        started = time.perf_counter()
        permit, slot = await self._admit(request, started)
        if self._modules is not None:
            try:
                await self._modules.ensure(function.module_key)
            except (ModuleUnavailable, DbUnavailable) as exc:
                _release(permit, slot)
                unavailable = type(exc)(
                    exc.message, function=function.name, retry_after=self._defaults.retry_after_s
                )
                self._record(request, started, error=unavailable, outcome=None)
                raise unavailable from exc
            except BaseException:
                _release(permit, slot)
                raise
        breaker = self.breakers.get(function.name, function.config.circuit_breaker)
        if breaker is not None and not await breaker.allow():
            _release(permit, slot)
            wait = max(1, math.ceil(breaker.retry_after()))
            refused_open = CircuitOpen(
                f"Circuit open: {function.name} is failing; retry in {wait}s",
                function=function.name,
                retry_after=wait,
            )
            self._record(request, started, error=refused_open, outcome=None)
            raise refused_open
        secrets = await self._environment(request, started, permit, slot)
        self._metrics.in_flight.inc()
        try:
            timeout_ms = self.timeout_ms(function)
            outcome = await self._pool.run(
                self._job(request, timeout_ms, secrets),
                wait_until=time.monotonic() + timeout_ms / 1000,
            )
        finally:
            _release(permit, slot)
            self._metrics.in_flight.dec()
        failure = self._error_for(function, outcome)
        if failure is not None:
            failure.message = self._scrub(failure.message)
        if breaker is not None:
            if outcome.ran:
                breaker.record(not isinstance(failure, ServerError))
            else:
                breaker.abandon()  # capacity, not the function: no verdict either way
        self._record(request, started, error=failure, outcome=outcome)
        if failure is not None:
            raise failure
        headers = outcome.headers
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers = [("content-type", function.config.response_content_type), *headers]
        return InvocationResult(
            status=outcome.status or 200,
            headers=headers,
            body=outcome.stdout,
            duration_ms=(time.perf_counter() - started) * 1000,
            outcome=outcome,
        )

    async def _environment(
        self, request: InvocationRequest, started: float, permit: Permit, slot: Slot | None
    ) -> Mapping[str, str]:
        if self._secrets is None:
            return {}
        try:
            return await self._secrets.current()
        except DbUnavailable as exc:
            _release(permit, slot)
            unavailable = DbUnavailable(
                f"Database unavailable: the secrets cannot be read ({exc.message})",
                function=request.function.name,
                retry_after=self._defaults.retry_after_s,
            )
            self._record(request, started, error=unavailable, outcome=None)
            raise unavailable from exc
        except Exception as exc:
            _release(permit, slot)
            unopened = InternalError(
                "Secrets cannot be opened: WASMLET_SECRETS_KEY is not the key they were "
                "stored with",
                function=request.function.name,
            )
            self._record(request, started, error=unopened, outcome=None)
            raise unopened from exc
        except BaseException:
            _release(permit, slot)
            raise

    @property
    def in_flight(self) -> int:
        return self._limiter.in_flight

    async def _admit(
        self, request: InvocationRequest, started: float
    ) -> tuple[Permit, Slot | None]:
        """A place under this node's limits and, for a function with `max_concurrency`,
        one of its cluster-wide slots (the only database round trip on this path)."""
        function = request.function
        limit = function.config.max_concurrency
        permit = self._limiter.try_acquire(function.name, limit)
        slot: Slot | None = None
        if permit is not None and limit is not None:
            try:
                slot = await self.slots.acquire(function.name, limit)
            except DbUnavailable as exc:
                permit.release()
                unavailable = DbUnavailable(
                    f"Database unavailable: the cluster-wide limit of {function.name} "
                    f"cannot be checked ({exc.message})",
                    function=function.name,
                    retry_after=self._defaults.retry_after_s,
                )
                self._record(request, started, error=unavailable, outcome=None)
                raise unavailable from exc
            if slot is None:
                permit.release()
                permit = None
        if permit is None:
            refused = TooManyRequests(
                "Too many concurrent invocations", function=function.name,
                retry_after=self._defaults.retry_after_s,
            )  # fmt: skip
            self._record(request, started, error=refused, outcome=None)
            raise refused
        return permit, slot

    def record_refusal(
        self, name: str, error: FunctionError, request_id: str, *, known: bool
    ) -> None:
        """Count and log an invocation refused before it ran (401, 404, 400, 413).

        Names that match no function are not used as metric labels: anyone can send
        them, and each would make a new time series.
        """
        if known:
            self._metrics.errors.labels(name, error.type).inc()
            if self._history is not None:
                self._history.record(
                    InvocationEntry.ended_now(
                        request_id, name, None, "http", 1, error.status, 0.0, error
                    )
                )
        else:
            self._metrics.refused.labels(error.type).inc()
        self._log.warning(
            "invocation refused",
            function=name[:64],
            error=f"{error.status} {error.message}",
            error_type=error.type,
            status=error.status,
            duration_ms=0.0,
            user_id=None,
            request_id=request_id,
        )

    def _job(self, request: InvocationRequest, timeout_ms: int, secrets: Mapping[str, str]) -> Job:
        function = request.function
        env = {**secrets, **function.config.env}  # the function's own env wins
        env.update(
            WASMLET_FUNCTION=function.name,
            WASMLET_VERSION=str(function.version),
            WASMLET_REQUEST_ID=request.request_id,
            WASMLET_TRIGGER=request.trigger,
            WASMLET_HTTP_METHOD=request.method,
            WASMLET_HTTP_PATH=request.path,
            WASMLET_HTTP_QUERY=request.query,
            WASMLET_HTTP_HEADERS=json.dumps(request.headers),
        )
        return Job(
            invocation_id=request.request_id,
            module_key=function.module_key,
            module_path=request.module_path,
            stdin=request.payload,
            env=env,
            argv=(function.name,),
            timeout_ms=timeout_ms,
            memory_limit_bytes=self.memory_mb(function) * MB,
            stdout_limit=self._defaults.max_response_bytes,
            stderr_limit=self._defaults.max_log_bytes,
            allowed_hosts=tuple(function.config.allowed_hosts),
        )

    def _error_for(self, function: FunctionRecord, outcome: Outcome) -> FunctionError | None:
        name = function.name
        kind = outcome.kind
        if kind is OutcomeKind.OK:
            return None
        if kind is OutcomeKind.TIMEOUT:
            return FunctionTimeout(
                f"Function timeout after {_seconds(self.timeout_ms(function))}", function=name
            )
        if kind is OutcomeKind.MEMORY_LIMIT:
            return MemoryLimitExceeded(
                f"Function exceeded memory limit ({self.memory_mb(function)}MB)", function=name
            )
        if kind is OutcomeKind.RUNTIME_CRASH:
            return RuntimeCrash(f"WebAssembly runtime crashed: {outcome.message}", function=name)
        if outcome.host_error is not None and kind in (OutcomeKind.TRAP, OutcomeKind.EXIT_ERROR):
            error_type, detail = outcome.host_error
            call = outcome.host_call or "db_query"
            last = outcome.last_host_call_failed
            if error_type == "db_unavailable" and last:
                return DbUnavailable(
                    f"Database unavailable: {detail}",
                    function=name,
                    retry_after=self._defaults.retry_after_s,
                )
            message = f"Host function error: {call} failed ({error_type}): {detail}"
            if call == "http_request" and error_type in TRANSIENT and last:
                return TransientHostFunctionError(message, function=name)
            return HostFunctionError(message, function=name)
        if kind is OutcomeKind.OUTPUT_LIMIT:
            return UserCodeError(
                f"Function error: response body over {self._defaults.max_response_bytes} bytes",
                function=name,
            )
        if kind is OutcomeKind.EXIT_ERROR and outcome.exit_code == 1:
            uncaught = uncaught_message(outcome.stderr)  # a JavaScript throw
            if uncaught is not None:
                return UserCodeError(f"Function error: {uncaught}", function=name)
        return UserCodeError(f"Function error: {outcome.message}", function=name)

    def _record(
        self,
        request: InvocationRequest,
        started: float,
        *,
        error: FunctionError | None,
        outcome: Outcome | None,
    ) -> None:
        name = request.function.name
        duration_s = time.perf_counter() - started
        status = error.status if error else (outcome.status if outcome and outcome.status else 200)
        metrics = self._metrics
        metrics.invocations.labels(name, str(status)).inc()
        metrics.duration.labels(name).observe(duration_s)
        fields: dict[str, Any] = {
            "function": name,
            "version": request.function.version,
            "trigger": request.trigger,
            "attempt": request.attempt,
            "status": status,
            "duration_ms": round(duration_s * 1000, 3),
            "user_id": request.user_id,
            "request_id": request.request_id,
        }
        if self._history is not None:
            version, trigger, attempt = request.function.version, request.trigger, request.attempt
            entry = InvocationEntry.ended_now(
                request.request_id, name, version, trigger, attempt, status, duration_s, error,
                outcome, request.user_id,
            )  # fmt: skip
            self._history.record(self._scrubbed(entry))
        if error is None:
            self._log.info("invocation succeeded", error=None, **fields)
            return
        metrics.errors.labels(name, error.type).inc()
        if isinstance(error, FunctionTimeout):
            metrics.timeouts.labels(name).inc()
        elif isinstance(error, MemoryLimitExceeded):
            metrics.memory_exceeded.labels(name).inc()
        if outcome is not None and outcome.stderr:
            fields["stderr"] = outcome.stderr[-STDERR_IN_LOG:].decode("utf-8", "replace")
        self._log.error(
            "invocation failed",
            error=f"{error.status} {error.message}",
            error_type=error.type,
            **fields,
        )

    def _scrubbed(self, entry: InvocationEntry) -> InvocationEntry:
        """What a function wrote, with every secret and key masked, as the log lines are."""
        if not (entry.stderr or entry.logs or entry.error_message):
            return entry  # nothing a function wrote: nothing to mask
        scrub = self._scrub
        return replace(
            entry,
            stderr=scrub(entry.stderr.decode("utf-8", "replace")).encode() if entry.stderr else b"",
            logs=tuple((level, scrub(text)) for level, text in entry.logs),
            error_message=scrub(entry.error_message) if entry.error_message else None,
        )


def _seconds(ms: int) -> str:
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms / 1000:g}s"


def _release(permit: Permit, slot: Slot | None) -> None:
    permit.release()
    if slot is not None:
        slot.release()
