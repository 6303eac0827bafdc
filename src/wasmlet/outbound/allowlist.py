"""`allowed_hosts`: which origins a function may call (Spin's model).

An entry is `scheme://host[:port]`:

- scheme: `http`, `https` or `*` (either);
- host: a DNS name, an IPv4 address, an IPv6 address in brackets, `*` (any host) or
  `*.example.com` (any name below example.com, not example.com itself);
- port: a number, `*` (any port), or nothing (the scheme's default port: 80, 443).

Nothing else is allowed in an entry: no path, query, user or password. Matching is
case-insensitive and ignores a trailing dot. An entry whose host has no wildcard
*names* that host: only then may the host resolve to a private, loopback or
link-local address (see `addresses`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

MAX_ENTRIES = 32
MAX_ENTRY_LENGTH = 255
DEFAULT_PORTS = {"http": 80, "https": 443}
ANY = "*"
_ENTRY = re.compile(r"(?P<scheme>[^:/]*)://(?P<authority>[^/?#@]*)(?P<rest>.*)", re.DOTALL)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|[a-z0-9_]")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class HostRule:
    """One parsed entry; `text` (the entry as written) is its name in metrics and logs."""

    text: str
    scheme: str  # "http", "https" or ANY
    host: str  # a lower-case name or IP text, ANY, or "*.suffix"
    port: int | None  # None: the scheme's default port; -1: any port

    @property
    def names_host(self) -> bool:
        return not self.host.startswith(ANY)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme not in (ANY, scheme):
            return False
        wanted = DEFAULT_PORTS[scheme] if self.port is None else self.port
        if wanted not in (-1, port):
            return False
        if self.host == ANY:
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host


class AllowList:
    """A function's parsed `allowed_hosts`; empty allows nothing."""

    def __init__(self, rules: Iterable[HostRule]) -> None:
        self.rules = tuple(rules)

    def match(self, scheme: str, host: str, port: int) -> HostRule | None:
        """The entry that allows the origin, one naming the host before any wildcard."""
        host = normalise_host(host)
        found = [rule for rule in self.rules if rule.matches(scheme, host, port)]
        found.sort(key=lambda rule: not rule.names_host)
        return found[0] if found else None


@lru_cache(maxsize=1024)
def allow_list(entries: tuple[str, ...]) -> AllowList:
    """The parsed allow-list of stored (already validated) entries."""
    return AllowList(parse_entry(entry) for entry in entries)


def normalise_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def parse_entry(text: str) -> HostRule:
    """The rule for one entry; ValueError with a sentence for people when it is not one."""
    if len(text) > MAX_ENTRY_LENGTH:
        raise ValueError(f"is longer than {MAX_ENTRY_LENGTH} characters")
    found = _ENTRY.fullmatch(text)
    if found is None:
        raise ValueError("must be scheme://host[:port], e.g. https://api.example.com")
    scheme, authority, rest = found["scheme"].lower(), found["authority"], found["rest"]
    if scheme not in (ANY, *DEFAULT_PORTS):
        raise ValueError("scheme must be http, https or *")
    if rest not in ("", "/") or "@" in text:
        raise ValueError("must be scheme://host[:port] only: no path, query, user or password")
    host, port_text = _split_authority(authority)
    port: int | None = None
    if port_text == ANY:
        port = -1
    elif port_text is not None:
        if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            raise ValueError("port must be a number from 1 to 65535, or *")
        port = int(port_text)
    return HostRule(text, scheme, _host_pattern(host), port)


def _split_authority(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise ValueError("has an IPv6 address without its closing ]")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise ValueError("must be scheme://host[:port]")
        return host, after[1:] if after else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _host_pattern(host: str) -> str:
    lowered = host.lower().rstrip(".")
    if lowered == ANY:
        return ANY
    if lowered.startswith("["):
        try:
            return str(ipaddress.IPv6Address(lowered[1:-1]))
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
    suffix = lowered[2:] if lowered.startswith("*.") else lowered
    if not suffix or not lowered.isascii():
        raise ValueError("host must be a name, an IP address, * or *.domain (IDN names as xn--)")
    labels = suffix.split(".")
    if len(suffix) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host} is not a valid host name")
    if not lowered.startswith("*.") and all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(suffix))
        except ValueError:
            raise ValueError(f"host {host} is not an IPv4 address") from None
    return lowered
