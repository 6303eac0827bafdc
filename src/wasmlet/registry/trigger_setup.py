"""What the registry needs from the trigger layer, as a protocol it owns.

The registry validates a deploy's triggers and installs them with its version, but the
triggers layer (capture triggers on the application database, schedule rows) sits above
it and depends on the registry's records. `wasmlet.triggers.database.TriggerInstaller`
satisfies this protocol; `Services` hands it in, so the import points down only.
"""

from __future__ import annotations

from typing import Any, Protocol


class TriggerSetup(Protocol):
    def validate(self, raw: object) -> list[dict[str, Any]]:
        """The deploy's triggers, checked (an `InvalidTrigger` names what is wrong)."""
        ...

    def capture(self, function: str, triggers: list[dict[str, Any]]) -> None:
        """Make the function's capture triggers exactly the database ones given."""
        ...

    def sync_schedules(self, function: str, triggers: list[dict[str, Any]]) -> None:
        """Make the function's schedule rows match its cron triggers."""
        ...
