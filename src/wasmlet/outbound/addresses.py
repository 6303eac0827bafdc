"""Which IP addresses a function may reach without an entry that names the host.

An allow-list of addresses, not a deny-list: only globally routable unicast
addresses pass. That refuses private (10/8, 172.16/12, 192.168/16, fc00::/7),
loopback, link-local (169.254/16 with the cloud metadata services, fe80::/10),
shared (100.64/10), multicast, unspecified, reserved and documentation ranges. An
IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`) must pass as its IPv4 address too.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
        if address.ipv4_mapped is not None:
            return True
    return address.is_global and not address.is_multicast
