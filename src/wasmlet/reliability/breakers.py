"""One circuit breaker per function, with the operator's defaults and the function's
own overrides. State changes are counted, logged and visible in the API."""

from __future__ import annotations

from collections.abc import Callable

from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics
from wasmlet.registry.models import BreakerConfig
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker

STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class FunctionBreakers:
    def __init__(
        self, defaults: BreakerPolicy, clock: Callable[[], float], metrics: Metrics
    ) -> None:
        self._defaults = defaults
        self._clock = clock
        self._metrics = metrics
        self._breakers: dict[str, tuple[BreakerPolicy, CircuitBreaker]] = {}
        self._log = get_logger("circuit_breaker")

    def policy_for(self, config: BreakerConfig) -> BreakerPolicy:
        d = self._defaults
        return BreakerPolicy(
            failure_rate=config.failure_rate if config.failure_rate is not None else d.failure_rate,
            window_s=config.window_s if config.window_s is not None else d.window_s,
            min_calls=config.min_calls if config.min_calls is not None else d.min_calls,
            cooldown_s=config.cooldown_s if config.cooldown_s is not None else d.cooldown_s,
        )

    def get(self, function: str, config: BreakerConfig) -> CircuitBreaker | None:
        if not config.enabled:
            self._breakers.pop(function, None)
            return None
        policy = self.policy_for(config)
        known = self._breakers.get(function)
        if known is not None and known[0] == policy:
            return known[1]
        breaker = CircuitBreaker(policy, self._clock, self._on_transition(function))
        self._breakers[function] = (policy, breaker)
        self._metrics.breaker_state.labels(function).set(0)
        return breaker

    def refusing(self) -> set[str]:
        """Functions whose breaker refuses calls now."""
        return {name for name, (_, breaker) in self._breakers.items() if breaker.refuses()}

    def view(self, function: str) -> dict[str, object]:
        known = self._breakers.get(function)
        if known is None:
            return {"state": str(BreakerState.CLOSED), "error_rate": 0.0, "retry_after_s": 0.0}
        breaker = known[1]
        return {
            "state": str(breaker.state),
            "error_rate": round(breaker.error_rate(), 4),
            "retry_after_s": round(breaker.retry_after(), 3),
        }

    def _on_transition(self, function: str) -> Callable[[BreakerState, BreakerState, str], None]:
        def moved(old: BreakerState, new: BreakerState, why: str) -> None:
            self._metrics.breaker_state.labels(function).set(STATE_VALUE[new])
            self._metrics.breaker_transitions.labels(function, str(new)).inc()
            log = self._log.warning if new is BreakerState.OPEN else self._log.info
            log(
                f"circuit {new}",
                function=function,
                previous=str(old),
                state=str(new),
                reason=why,
            )

        return moved
