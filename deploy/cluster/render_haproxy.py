#!/usr/bin/env python3
"""Render haproxy.cfg.template for N wasmlet nodes (standard library only).

    python3 render_haproxy.py --listen 0.0.0.0:8080 --stats 127.0.0.1:8404 \
        10.0.0.11:8787 10.0.0.12:8787 10.0.0.13:8787 > /etc/haproxy/haproxy.cfg

Every value is checked against a strict pattern before it reaches the file, so a
stray newline or directive cannot be smuggled into the configuration.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().with_name("haproxy.cfg.template")
# host:port, the host an IPv4 address, a DNS name or a bracketed IPv6 address.
ADDRESS = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\*)"
    r":(?:[1-9][0-9]{0,4})$"
)
INTERVAL = re.compile(r"^[1-9][0-9]{0,5}(?:ms|s)$")


def _address(value: str) -> str:
    if not ADDRESS.fullmatch(value) or int(value.rsplit(":", 1)[1]) > 65535:
        raise argparse.ArgumentTypeError(f"not a host:port: {value!r}")
    return value


def _interval(value: str) -> str:
    if not INTERVAL.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a duration such as 2s or 500ms: {value!r}")
    return value


def render(listen: str, stats: str, nodes: list[str], check_interval: str = "2s") -> str:
    for value in (listen, stats, *nodes):
        _address(value)
    _interval(check_interval)
    if not nodes:
        raise ValueError("at least one node")
    servers = "\n".join(f"    server node{i} {node}" for i, node in enumerate(nodes, 1))
    return Template(TEMPLATE.read_text()).substitute(
        listen=listen, stats=stats, check_interval=check_interval, servers=servers
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, default="0.0.0.0:8080")
    parser.add_argument("--stats", type=_address, default="127.0.0.1:8404")
    parser.add_argument("--check-interval", type=_interval, default="2s")
    parser.add_argument("nodes", nargs="+", type=_address, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.listen, args.stats, args.nodes, args.check_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
