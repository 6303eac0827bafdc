"""API keys: a service key (deploy, management) and an anon key (invoke).

Taken from the settings, or generated on first start into `keys.json` in the data
directory (mode 0600) and read back on every later start.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ApiKeys:
    service: str
    anon: str

    def is_service(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate, self.service)

    def can_invoke(self, candidate: str | None) -> bool:
        return candidate is not None and (
            hmac.compare_digest(candidate, self.anon) or self.is_service(candidate)
        )


def load_or_create_keys(path: Path, service: str | None, anon: str | None) -> ApiKeys:
    """Configured keys win; missing ones come from (or are generated into) `path`.

    Configured keys are never written to the file.
    """
    stored: dict[str, str] = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    missing = {
        field: prefix + secrets.token_urlsafe(32)
        for field, prefix, given in (("service_key", "sk_", service), ("anon_key", "ak_", anon))
        if not given and not stored.get(field)
    }
    if missing:
        stored.update(missing)
        _write_private(path, stored)
    return ApiKeys(service=service or stored["service_key"], anon=anon or stored["anon_key"])


def _write_private(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
