"""The request policy of the httpx connectors, with respx at the network edge."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest
import respx

from connectors import AuthFailed, FetchStats, Permanent, RateLimited, Transient
from connectors.github.connector import rate_limit_wait
from connectors.http import Requester, retry_after

URL = "https://api.github.test/repos/acme/api/issues"


@pytest.fixture
async def requester() -> Requester:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    made = Requester(
        httpx.AsyncClient(), provider="GitHub", stats=FetchStats(), headers={"X-Test": "1"},
        rate_limited=rate_limit_wait, max_attempts=4, max_delay=60.0, sleep=sleep,
    )  # fmt: skip
    made.slept = slept  # type: ignore[attr-defined]
    return made


@respx.mock
async def test_waits_what_a_rate_limit_asks_then_returns_the_answer(requester: Requester) -> None:
    reset = str(int(time.time()) + 20)
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}),
        httpx.Response(429, headers={"retry-after": "7"}),
        httpx.Response(200, json=[]),
    ])  # fmt: skip
    response = await requester.send("GET", URL, what="issues")
    assert response.status_code == 200
    assert route.calls[0].request.headers["x-test"] == "1"
    first, second = requester.slept  # type: ignore[attr-defined]
    assert 18 <= first <= 20
    assert second == 7
    assert (requester.stats.api_calls, requester.stats.retries) == (3, 2)


@respx.mock
async def test_a_wait_past_the_limit_is_handed_to_the_engine(requester: Requester) -> None:
    respx.get(URL).mock(return_value=httpx.Response(429, headers={"retry-after": "3600"}))
    with pytest.raises(RateLimited) as limited:
        await requester.send("GET", URL, what="issues")
    assert limited.value.retry_after == 3600
    assert requester.slept == []  # type: ignore[attr-defined]


@respx.mock
async def test_server_errors_and_resets_back_off_then_become_transient(
    requester: Requester,
) -> None:
    respx.get(URL).mock(side_effect=[
        httpx.Response(502), httpx.ConnectError("reset"), httpx.Response(503),
        httpx.Response(500),
    ])  # fmt: skip
    with pytest.raises(Transient, match="500"):
        await requester.send("GET", URL, what="issues")
    delays = requester.slept  # type: ignore[attr-defined]
    assert len(delays) == 3
    assert all(0.5 * 2**i <= d <= 2**i for i, d in enumerate(delays))


@respx.mock
@pytest.mark.parametrize(("status", "error"), [(401, AuthFailed), (403, AuthFailed),
                                                (404, Permanent), (422, Permanent)])  # fmt: skip
async def test_refusals_fail_at_once_with_the_providers_message(
    requester: Requester, status: int, error: type[Exception]
) -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(status, json={"message": "Nope"}))
    with pytest.raises(error, match="Nope"):
        await requester.send("GET", URL, what="issues")
    assert route.call_count == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = time.time()
    assert retry_after({"retry-after": "12"}, now) == 12
    in_a_minute = formatdate(now + 60, usegmt=True)
    assert 58 <= (retry_after({"retry-after": in_a_minute}, now) or 0) <= 60
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({}, now) is None


def test_a_secondary_limit_without_headers_waits_a_minute() -> None:
    answer = httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."})
    assert rate_limit_wait(answer) == 60.0
    assert rate_limit_wait(httpx.Response(403, json={"message": "Must have admin rights"})) is None
