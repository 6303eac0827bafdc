"""Whether this node can run a function now, the one question the dispatcher asks before
it claims jobs and before it runs one.

A node that cannot run a function (its circuit breaker refuses calls, or it cannot load
the module) claims none of its jobs and hands back at once one it claimed, so another
node runs it instead of the job waiting out a cool-down here. Where the answer comes
from (this node's breakers, or a state shared by the cluster) stays behind `Readiness`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from wasmlet.registry.models import FunctionRecord

Clock = Callable[[], float]
UNLOADABLE_HOLD_S = 5.0


class Readiness(Protocol):
    def not_ready(self) -> Collection[str]:
        """Functions whose jobs this node must not claim now."""
        ...

    def check(self, function: FunctionRecord) -> bool:
        """Whether this node can run this version of the function now."""
        ...


class Refusals(Protocol):
    def refusing(self) -> Collection[str]: ...


class NodeReadiness:
    """This node's breakers, and modules it failed to load (held back `hold_s`, then
    tried again: a compile cache may fill, a deploy may fix it)."""

    def __init__(
        self,
        breakers: Refusals,
        module_ready: Callable[[FunctionRecord], bool],
        clock: Clock,
        hold_s: float = UNLOADABLE_HOLD_S,
    ) -> None:
        self._breakers = breakers
        self._module_ready = module_ready
        self._clock = clock
        self._hold_s = hold_s
        self._unloadable: dict[str, float] = {}

    def not_ready(self) -> Collection[str]:
        now = self._clock()
        for name in [n for n, until in self._unloadable.items() if until <= now]:
            del self._unloadable[name]
        return {*self._breakers.refusing(), *self._unloadable}

    def check(self, function: FunctionRecord) -> bool:
        if function.name in self._breakers.refusing():
            return False
        if not self._module_ready(function):
            self._unloadable[function.name] = self._clock() + self._hold_s
            return False
        return True
