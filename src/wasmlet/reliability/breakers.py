"""One circuit breaker per function, with the operator's defaults and the function's
own overrides. State changes are counted, logged and visible in the API.

Two implementations behind one interface (`Breakers`, whose `get` hands the invoker
a `BreakerGate`):

- `FunctionBreakers` (SQLite, one node): each breaker lives in this process.
- `SharedBreakers` (`shared_breakers.py`, PostgreSQL): one state per function for
  every node, kept in the database with a bounded staleness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wasmlet.registry.models import BreakerConfig
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics

STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class BreakerGate(Protocol):
    """The invoker's view of one function's breaker."""

    async def allow(self) -> bool:
        """Whether a call may go ahead now (in half-open, only the one probe)."""

    def retry_after(self) -> float: ...

    def record(self, success: bool) -> None: ...

    def abandon(self) -> None:
        """An allowed call that never ran: free the probe without a verdict."""


class Breakers(Protocol):
    def get(self, function: str, config: BreakerConfig) -> BreakerGate | None:
        """The function's breaker; None when the function turned it off."""

    def view(self, function: str) -> dict[str, object]: ...

    def refusing(self) -> set[str]:
        """Functions whose breaker refuses calls now (no probe taken, no state moved)."""

    async def aclose(self) -> None: ...


def policy_for(defaults: BreakerPolicy, config: BreakerConfig) -> BreakerPolicy:
    d = defaults
    return BreakerPolicy(
        failure_rate=config.failure_rate if config.failure_rate is not None else d.failure_rate,
        window_s=config.window_s if config.window_s is not None else d.window_s,
        min_calls=config.min_calls if config.min_calls is not None else d.min_calls,
        cooldown_s=config.cooldown_s if config.cooldown_s is not None else d.cooldown_s,
    )


def log_transition(
    metrics: Metrics, function: str, old: BreakerState, new: BreakerState, why: str
) -> None:
    metrics.breaker_state.labels(function).set(STATE_VALUE[new])
    metrics.breaker_transitions.labels(function, str(new)).inc()
    log = get_logger("circuit_breaker")
    (log.warning if new is BreakerState.OPEN else log.info)(
        f"circuit {new}", function=function, previous=str(old), state=str(new), reason=why
    )


class LocalGate:
    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker

    async def allow(self) -> bool:
        return self.breaker.allow()

    def retry_after(self) -> float:
        return self.breaker.retry_after()

    def record(self, success: bool) -> None:
        self.breaker.record(success)

    def abandon(self) -> None:
        self.breaker.abandon()


class FunctionBreakers:
    """In-process breakers: the state of this node alone."""

    def __init__(
        self, defaults: BreakerPolicy, clock: Callable[[], float], metrics: Metrics
    ) -> None:
        self._defaults = defaults
        self._clock = clock
        self._metrics = metrics
        self._breakers: dict[str, tuple[BreakerPolicy, LocalGate]] = {}

    def policy_for(self, config: BreakerConfig) -> BreakerPolicy:
        return policy_for(self._defaults, config)

    def get(self, function: str, config: BreakerConfig) -> LocalGate | None:
        if not config.enabled:
            self._breakers.pop(function, None)
            return None
        policy = self.policy_for(config)
        known = self._breakers.get(function)
        if known is not None and known[0] == policy:
            return known[1]
        gate = LocalGate(CircuitBreaker(policy, self._clock, self._on_transition(function)))
        self._breakers[function] = (policy, gate)
        self._metrics.breaker_state.labels(function).set(0)
        return gate

    def refusing(self) -> set[str]:
        """Functions whose breaker refuses calls now."""
        return {name for name, (_, gate) in self._breakers.items() if gate.breaker.refuses()}

    def view(self, function: str) -> dict[str, object]:
        known = self._breakers.get(function)
        if known is None:
            return {"state": str(BreakerState.CLOSED), "error_rate": 0.0, "retry_after_s": 0.0}
        breaker = known[1].breaker
        return {
            "state": str(breaker.state),
            "error_rate": round(breaker.error_rate(), 4),
            "retry_after_s": round(breaker.retry_after(), 3),
        }

    async def aclose(self) -> None:
        return None

    def _on_transition(self, function: str) -> Callable[[BreakerState, BreakerState, str], None]:
        def moved(old: BreakerState, new: BreakerState, why: str) -> None:
            log_transition(self._metrics, function, old, new, why)

        return moved
