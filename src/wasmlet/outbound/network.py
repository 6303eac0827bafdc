"""An httpcore network backend that connects only to addresses it has checked.

httpcore hands `connect_tcp` the URL's host name. This backend resolves it itself,
checks every address the name resolves to (`addresses.is_public`) and then connects
to one of those very addresses, so no second lookup can answer differently (no
DNS-rebinding gap). TLS still runs on the stream with the URL's host name as SNI and
for certificate checks, since httpcore calls `start_tls` with it after this returns.

A connection pool built on the strict backend holds only connections to public
addresses, so any function may reuse them. Hosts that an allow-list entry names go
through a second pool whose backend accepts any address (`public_only=False`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore

from wasmlet.outbound.addresses import IPAddress, is_public


class ForbiddenAddress(httpcore.ConnectError):
    """The host resolves to an address a function may not reach."""

    def __init__(self, host: str, address: IPAddress) -> None:
        super().__init__(f"{host} resolves to {address}, a non-public address")
        self.address = address


class CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, public_only: bool) -> None:
        self.public_only = public_only
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """Every address of `host`, each checked; raises ForbiddenAddress or ConnectError."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from None
        addresses: list[IPAddress] = []
        for family, *_, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if self.public_only and not is_public(address):
                raise ForbiddenAddress(host, address)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no IP address")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from functions")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
