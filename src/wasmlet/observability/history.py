"""Invocation history and function logs, written off the hot path and pruned cheaply.

The invoker hands every invocation it counts (run or refused) to `HistoryWriter.record`,
which only appends an `InvocationEntry` to a bounded in-memory queue. A thread drains
the queue every `flush_s` on its own store connection: one transaction per batch holds
the invocation rows and their log lines. Lines are, in order, the `log` host calls
(with their level), then stderr split at newlines (level `info`: stderr is a WASI
guest's log channel), then, for a 5xx, one `platform` line with the error.

Retention is per function, by count and by age, and always drops the oldest rows
(lowest sequence numbers) first. The count bound is enforced after every
`max(1, bound // 10)` new rows of a function (one indexed DELETE), the age bound on a
timer (`prune_interval_s`) in chunks, so neither costs anything per call.

When the queue is full (the store is down or slower than the traffic) new entries are
dropped and counted (`functions_history_dropped_total`): history is an aid to the
operator, never a reason to slow or fail an invocation.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wasmlet.errors import DbUnavailable, FunctionError
from wasmlet.runtime.outcome import Outcome
from wasmlet.settings import Settings
from wasmlet.store.base import Store
from wasmlet.store.factory import open_store
from wasmlet.telemetry.logs import get_logger

Clock = Callable[[], float]
SEVERITY = {"debug": 10, "info": 20, "warn": 30, "error": 40}
QUEUE_LIMIT = 10_000
BATCH_LIMIT = 500
AGE_PRUNE_CHUNK = 5_000
RETRY_DELAY_S = 1.0
MAX_LINE_CHARS = 8192


@dataclass(frozen=True, slots=True)
class Retention:
    log_lines: int = 10_000
    log_age_s: float = 7 * 24 * 3600
    invocations: int = 10_000
    invocation_age_s: float = 7 * 24 * 3600
    prune_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class InvocationEntry:
    """One invocation as the history keeps it; built by the invoker, written later."""

    id: str
    function: str
    version: int | None
    trigger: str
    attempt: int
    status: int
    error_type: str | None
    error_message: str | None
    duration_ms: float
    started_at: float
    ended_at: float
    stderr: bytes = b""
    stderr_truncated: bool = False
    logs: tuple[tuple[str, str], ...] = ()
    user_id: str | None = None

    @classmethod
    def ended_now(
        cls,
        invocation_id: str,
        function: str,
        version: int | None,
        trigger: str,
        attempt: int,
        status: int,
        duration_s: float,
        error: FunctionError | None = None,
        outcome: Outcome | None = None,
        user_id: str | None = None,
    ) -> InvocationEntry:
        """An invocation that ended just now, after `duration_s`."""
        ended_at = time.time()
        return cls(
            id=invocation_id,
            function=function,
            version=version,
            trigger=trigger,
            attempt=attempt,
            status=status,
            error_type=error.type if error is not None else None,
            error_message=error.message if error is not None else None,
            duration_ms=round(duration_s * 1000, 3),
            started_at=ended_at - duration_s,
            ended_at=ended_at,
            stderr=outcome.stderr if outcome is not None else b"",
            stderr_truncated=outcome.stderr_truncated if outcome is not None else False,
            logs=tuple(outcome.logs) if outcome is not None else (),
            user_id=user_id,
        )

    def log_lines(self) -> list[tuple[str, str, str]]:
        """(level, source, message) for each line, in the order they are stored."""
        lines = [(str(level), "log", text) for level, text in self.logs]
        if self.stderr:
            text = self.stderr.decode("utf-8", "replace")
            lines.extend(("info", "stderr", line) for line in _split(text))
            if self.stderr_truncated:
                lines.append(("warn", "platform", "stderr truncated at the log size limit"))
        if self.status >= 500 and self.error_type is not None:
            message = f"{self.status} {self.error_type}: {self.error_message or ''}".rstrip()
            lines.append(("error", "platform", message))
        return lines


def _split(text: str) -> Iterable[str]:
    for raw in text.splitlines():
        line = raw.rstrip()
        if line:
            yield line


def _clean(text: str | None) -> str | None:
    """PostgreSQL text holds no NUL; lines are capped."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd")[:MAX_LINE_CHARS]


@dataclass
class _Pending:
    """Rows of one function written since its count bound was last enforced."""

    lines: int = 0
    invocations: int = 0


class HistoryWriter:
    """Owns a store connection and a thread; `close()` flushes what is queued."""

    def __init__(
        self,
        store: Store,
        retention: Retention,
        *,
        clock: Clock = time.time,
        on_drop: Callable[[int], None] = lambda count: None,
        flush_s: float = 0.05,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self.on_drop = on_drop
        self.flush_s = flush_s
        self.queue_limit = queue_limit
        self._queue: collections.deque[InvocationEntry] = collections.deque()
        self._pending: dict[str, _Pending] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_age_prune = clock()
        self._failing = False
        self._log = get_logger("history")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def record(self, entry: InvocationEntry) -> None:
        """Queue an entry; never blocks (called on the event loop, per invocation)."""
        if len(self._queue) >= self.queue_limit:
            self.on_drop(1)
            return
        self._queue.append(entry)

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.store.close()

    # --- the writer thread ------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.flush_s)
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write everything queued now, then prune what is due; entries written."""
        written = 0
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH_LIMIT, len(self._queue)))]
            if not self._write(batch):
                return written
            written += len(batch)
        try:
            self._prune_counts(force=False)
            if self.clock() - self._last_age_prune >= self.retention.prune_interval_s:
                self.prune_ages()
        except Exception as exc:
            self._log.warning("history pruning failed", error=f"{type(exc).__name__}: {exc}")
        return written

    def _write(self, batch: list[InvocationEntry]) -> bool:
        invocations: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for entry in batch:
            entry_lines = entry.log_lines()
            invocations.append(
                {
                    "id": entry.id,
                    "function_name": entry.function,
                    "version": entry.version,
                    "trigger_kind": entry.trigger,
                    "attempt": entry.attempt,
                    "status": entry.status,
                    "error_type": entry.error_type,
                    "error": _clean(entry.error_message),
                    "duration_ms": entry.duration_ms,
                    "started_at": entry.started_at,
                    "log_lines": len(entry_lines),
                    "user_id": _clean(entry.user_id),
                }
            )
            for level, source, message in entry_lines:
                lines.append(
                    {
                        "function_name": entry.function,
                        "invocation_id": entry.id,
                        "attempt": entry.attempt,
                        "at": entry.ended_at,
                        "severity": SEVERITY.get(level, SEVERITY["info"]),
                        "level": level,
                        "source": source,
                        "message": _clean(message),
                    }
                )
        while True:
            try:
                with self.store.transaction():
                    self.store.execute_many("insert_invocation", invocations)
                    if lines:
                        self.store.execute_many("insert_log_line", lines)
            except DbUnavailable as exc:
                # The store is down: hold this batch and try again; the bounded queue
                # drops new entries meanwhile.
                self._note_failure(exc)
                if self._stop.wait(RETRY_DELAY_S):  # shutting down: give this batch up
                    self.on_drop(len(batch))
                    return False
                continue
            except Exception as exc:  # data the store refuses: drop it, keep going
                self._note_failure(exc)
                self.on_drop(len(batch))
                return True
            break
        if self._failing:
            self._failing = False
            self._log.info("history writes resumed")
        for entry in batch:
            pending = self._pending.setdefault(entry.function, _Pending())
            pending.invocations += 1
        for row in lines:
            self._pending[row["function_name"]].lines += 1
        return True

    def _note_failure(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            self._log.error("history write failed", error=f"{type(exc).__name__}: {exc}")

    def _prune_counts(self, *, force: bool) -> None:
        retention = self.retention
        line_step = max(1, retention.log_lines // 10)
        invocation_step = max(1, retention.invocations // 10)
        for name, pending in list(self._pending.items()):
            if pending.lines and (force or pending.lines >= line_step):
                self.store.execute(
                    "prune_logs_over_count", function_name=name, keep=retention.log_lines
                )
                pending.lines = 0
            if pending.invocations and (force or pending.invocations >= invocation_step):
                self.store.execute(
                    "prune_invocations_over_count", function_name=name, keep=retention.invocations
                )
                pending.invocations = 0
            if not pending.lines and not pending.invocations:
                del self._pending[name]

    def prune_ages(self) -> tuple[int, int]:
        """Drop rows past the age bounds, and enforce every count bound still owed."""
        now = self.clock()
        self._last_age_prune = now
        self._prune_counts(force=True)
        lines = self._delete_older("prune_logs_older_than", now - self.retention.log_age_s)
        invocations = self._delete_older(
            "prune_invocations_older_than", now - self.retention.invocation_age_s
        )
        return lines, invocations

    def _delete_older(self, query: str, cutoff: float) -> int:
        total = 0
        while True:
            deleted = self.store.execute(query, cutoff=cutoff, limit=AGE_PRUNE_CHUNK)
            total += max(0, deleted)
            if deleted < AGE_PRUNE_CHUNK:
                return total


def open_history(settings: Settings, on_drop: Callable[[int], None]) -> HistoryWriter | None:
    """A started writer on its own store connection, or None with WASMLET_HISTORY=false."""
    if not settings.history:
        return None
    store = open_store(  # one writer thread: two connections are plenty
        settings.database_url, settings.platform_db_path, schema=settings.pg_schema, pool_size=2
    )
    retention = Retention(
        log_lines=settings.log_retention_lines,
        log_age_s=settings.log_retention_s,
        invocations=settings.invocation_retention,
        invocation_age_s=settings.invocation_retention_s,
        prune_interval_s=settings.history_prune_interval_s,
    )
    writer = HistoryWriter(store, retention, clock=time.time, on_drop=on_drop)
    writer.start()
    return writer
