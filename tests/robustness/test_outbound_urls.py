"""Outbound webhook URLs: names that resolve to private, loopback or link-local addresses are
refused when saved and when dialled.

(Literal addresses and `localhost`, the allow switch, a name that changed its answer between
saving and sending, and redirects, which are never followed, are in tests/webhooks.)
"""

from __future__ import annotations

import httpx
import pytest

from service.errors import InvalidInput
from service.webhooks import destinations

PRIVATE = ["10.0.0.7", "172.16.5.4", "192.168.1.1", "127.0.0.2", "169.254.169.254",
           "100.64.0.9", "::1", "fe80::1", "fc00::5", "::ffff:10.0.0.7", "0.0.0.0"]  # fmt: skip
PUBLIC = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:  # noqa: ARG001
        asked.append(host)
        return list(addresses)

    monkeypatch.setattr(destinations, "resolve", resolve)
    return asked


@pytest.mark.parametrize("address", PRIVATE)
async def test_a_name_resolving_to_a_private_address_is_refused_when_saved(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    asked = resolving_to(monkeypatch, address)
    with pytest.raises(InvalidInput) as refused:
        await destinations.check_url("https://hooks.internal.example/x", allow_private=False)
    assert asked == ["hooks.internal.example"]
    assert address in refused.value.detail
    # ...and taken when private receivers are allowed.
    allowed = await destinations.check_url("https://hooks.internal.example/x", allow_private=True)
    assert allowed == "https://hooks.internal.example/x"


async def test_one_private_address_among_public_ones_is_enough_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving_to(monkeypatch, PUBLIC[0], "10.1.2.3")
    with pytest.raises(InvalidInput):
        await destinations.check_url("https://mixed.example/x", allow_private=False)
    resolving_to(monkeypatch, *PUBLIC)
    assert await destinations.check_url("https://public.example/x", allow_private=False)


@pytest.mark.parametrize("address", PRIVATE)
async def test_the_dialler_refuses_a_name_that_resolves_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    resolving_to(monkeypatch, address)
    async with destinations.outbound_client(allow_private=False) as client:
        with pytest.raises(httpx.ConnectError, match="private"):
            await client.post("http://rebound.example/hook", content=b"{}")
