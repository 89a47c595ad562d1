"""Outbound webhook destinations: public addresses only, unless private ones are allowed.

A receiver's URL is checked when it is saved, and again where it counts: when the socket
connects, against the very address being dialled. So a name that resolves to a private address
later (DNS rebinding) is refused too, and since redirects are never followed, a public receiver
cannot bounce a signed message into the private network either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore
import httpx

from service.errors import InvalidInput

RESOLVE_TIMEOUT = 5.0
SCHEMES = frozenset({"http", "https"})


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local,
    shared, reserved or multicast), looking through IPv4-mapped IPv6 addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if okr-sync may send webhooks to it; otherwise a 422 saying why."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput.at("url", f"not a URL: {exc}") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise InvalidInput.at("url", "must be an absolute http or https URL")
    if allow_private:
        return url
    literal = _literal(parsed.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(parsed.host, parsed.port or 443)
        except (OSError, TimeoutError):
            # Unresolvable today is not private; the check at connect time still applies.
            return url
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise InvalidInput.at(
            "url",
            f"{parsed.host} is a private, loopback or link-local address ({private[0]}); "
            "set OKR_SYNC_ALLOW_PRIVATE_WEBHOOK_URLS=true to allow such receivers",
        )
    return url


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Dials only public addresses: the name is resolved here and the address it gave is the
    one connected to, so nothing can change between the check and the connection."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        public = [a for a in addresses if is_public(a)]
        if not public:
            raise httpcore.ConnectError(
                f"refused: {host} resolves to a private, loopback or link-local address"
            )
        error: Exception | None = None
        for address in public:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


TIMEOUT = httpx.Timeout(10.0)
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def outbound_client(*, allow_private: bool) -> httpx.AsyncClient:
    """The client webhooks are sent with: 10 s timeout, no redirects, no proxy from the
    environment (a proxy would dial the address on our behalf, unchecked)."""
    transport = httpx.AsyncHTTPTransport(limits=LIMITS, trust_env=False)
    if not allow_private:
        # httpx takes no network backend, so its pool is rebuilt with one; the rest of the
        # transport (request and response mapping) stays httpx's own.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=PublicOnlyBackend(),
        )
    return httpx.AsyncClient(
        transport=transport, timeout=TIMEOUT, follow_redirects=False, trust_env=False
    )
