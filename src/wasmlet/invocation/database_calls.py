"""Answers guests' `db_query` host calls on the server's side.

Queries run on a small thread pool (each thread keeps its own connection). Only
`db_unavailable` failures count for the breaker: a bad query is the function's
problem, a dead database is everyone's. While the breaker is open, calls fail fast
with `db_unavailable` instead of waiting on connection timeouts. Anything else the
database layer raises is answered as `db_unavailable` and counted as such (a probe
left without a verdict would keep a half-open breaker shut for good); a cancelled
call gives no verdict.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from wasmlet.appdb.base import AppDatabase, QueryError, QueryErrorType
from wasmlet.reliability.breaker import BreakerState, CircuitBreaker
from wasmlet.runtime.outcome import HostCall
from wasmlet.telemetry.logs import get_logger


class DatabaseGateway:
    def __init__(
        self, database: AppDatabase, breaker: CircuitBreaker, *, threads: int, max_bytes: int
    ) -> None:
        self.database = database
        self.breaker = breaker
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db-query")
        self._max_bytes = max_bytes
        self._log = get_logger("db_query")

    async def handle(self, call: HostCall) -> bytes:
        if call.kind != "db_query":
            return QueryError(
                QueryErrorType.QUERY_ERROR, f"unknown host call {call.kind}"
            ).to_json()
        if not self.breaker.allow():
            error = QueryError(
                QueryErrorType.DB_UNAVAILABLE,
                f"database unavailable (circuit open, retry in {self.breaker.retry_after():.1f}s)",
            )
            return error.to_json()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._threads,
                self.database.query,
                call.text,
                call.params,
                call.deadline,
                self._max_bytes,
            )
        except QueryError as exc:
            self.breaker.record(exc.error_type is not QueryErrorType.DB_UNAVAILABLE)
            self._log.warning(
                "query failed",
                function=call.function,
                request_id=call.invocation_id,
                error=exc.message,
                error_type=str(exc.error_type),
            )
            return exc.to_json()
        except Exception as exc:  # not an answer of the database's: count it as one unreachable
            self.breaker.record(False)
            self._log.error(
                "query failed unexpectedly",
                function=call.function,
                request_id=call.invocation_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            message = f"the query could not be run ({type(exc).__name__})"
            return QueryError(QueryErrorType.DB_UNAVAILABLE, message).to_json()
        except BaseException:  # cancelled: no verdict, and a half-open probe is free again
            self.breaker.abandon()
            raise
        self.breaker.record(True)
        return result

    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.database.close()
