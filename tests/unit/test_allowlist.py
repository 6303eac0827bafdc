"""`allowed_hosts` entries, matching, and the public-address rule."""

from __future__ import annotations

import ipaddress

import pytest

from wasmlet.outbound.addresses import is_public
from wasmlet.outbound.allowlist import AllowList, parse_entry


def rules(*entries: str) -> AllowList:
    return AllowList(parse_entry(entry) for entry in entries)


@pytest.mark.parametrize(
    ("entries", "origin", "allowed_by"),
    [
        (
            ("https://api.example.com",),
            ("https", "api.example.com", 443),
            "https://api.example.com",
        ),
        (
            ("https://api.example.com",),
            ("https", "API.Example.com.", 443),
            "https://api.example.com",
        ),
        (("https://api.example.com",), ("https", "api.example.com", 8443), None),
        (("https://api.example.com",), ("http", "api.example.com", 80), None),
        (("*://api.example.com",), ("http", "api.example.com", 80), "*://api.example.com"),
        (("*://api.example.com",), ("http", "api.example.com", 443), None),
        (("https://*.example.com",), ("https", "a.b.example.com", 443), "https://*.example.com"),
        (("https://*.example.com",), ("https", "example.com", 443), None),
        (("https://*.example.com",), ("https", "evilexample.com", 443), None),
        (("http://*:*",), ("http", "10.0.0.1", 9), "http://*:*"),
        (("http://[::1]:8080",), ("http", "::1", 8080), "http://[::1]:8080"),
        (("http://127.0.0.1:8080",), ("http", "127.0.0.1", 8080), "http://127.0.0.1:8080"),
        ((), ("https", "api.example.com", 443), None),
    ],
)
def test_matching(
    entries: tuple[str, ...], origin: tuple[str, str, int], allowed_by: str | None
) -> None:
    rule = rules(*entries).match(*origin)
    assert (rule.text if rule else None) == allowed_by


def test_an_entry_naming_the_host_wins_over_a_wildcard() -> None:
    rule = rules("http://*:*", "http://localhost:8080").match("http", "localhost", 8080)
    assert rule is not None and rule.names_host
    wildcard = rules("http://*:*", "http://localhost:8080").match("http", "other", 8080)
    assert wildcard is not None and not wildcard.names_host


@pytest.mark.parametrize(
    "entry",
    [
        "api.example.com", "ftp://x", "http://x/path", "http://x?q", "http://u:p@x",
        "http://x:0", "http://x:70000", "http://x:abc", "http://*x.com", "http://x.*.com",
        "http://10.1", "http://[::1", "http://bücher.de", "http://", "http://a b",
        "http://" + "a" * 300,
    ],
)  # fmt: skip
def test_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(entry)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2606:4700::1111", True), ("::ffff:8.8.8.8", True),
        ("10.0.0.1", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("127.0.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False), ("255.255.255.255", False),
        ("::1", False), ("::", False), ("fe80::1", False), ("fd00::1", False),
        ("ff02::1", False), ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False),
        ("64:ff9b::7f00:1", False), ("2002:a00:1::", False),
    ],
)  # fmt: skip
def test_only_public_unicast_addresses_pass(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
