"""One request policy for the connectors that speak HTTP through httpx.

A provider's rate-limit answer waits exactly what the provider asks (when that is short), 5xx
answers and broken connections back off exponentially, and after a few attempts the fault
goes to the sync engine, which resumes the run from its checkpoint. A wait longer than
``max_delay`` is not slept here: it becomes ``RateLimited`` so the engine can defer the run
instead of holding a worker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.base import FetchStats
from connectors.errors import AuthFailed, Permanent, RateLimited, Transient

logger = logging.getLogger(__name__)

RETRYABLE = frozenset({500, 502, 503, 504})
# Seconds to wait before retrying, or None when the answer is not a rate limit.
RateLimitRule = Callable[[httpx.Response], float | None]


def never(_: httpx.Response) -> bool:
    return False


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def excerpt(response: httpx.Response, limit: int = 300) -> str:
    return response.text[:limit].replace("\n", " ")


@dataclass
class Requester:
    """Sends requests for one connector, counting each attempt as an API call."""

    http: httpx.AsyncClient
    provider: str
    stats: FetchStats
    headers: dict[str, str]
    rate_limited: RateLimitRule
    # Providers that refuse credentials with a status other than 401/403 (GraphQL's 400).
    refused: Callable[[httpx.Response], bool] = field(default=never)
    max_attempts: int = 5
    max_delay: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def send(
        self, method: str, url: str, *, what: str, headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        """The provider's answer: 2xx or 304; anything else raises a connector error."""
        merged = self.headers | dict(headers or {})
        for attempt in range(1, self.max_attempts + 1):
            self.stats.api_calls += 1
            try:
                response = await self.http.request(method, url, headers=merged, **kwargs)
            except httpx.TransportError as exc:
                delay = self._backoff(attempt)
                if attempt == self.max_attempts:
                    raise Transient(
                        f"{self.provider} unreachable on {what}: {type(exc).__name__}"
                    ) from exc
            else:
                wait = self.rate_limited(response)
                if wait is not None:
                    if wait > self.max_delay or attempt == self.max_attempts:
                        raise RateLimited(f"{self.provider} rate limit on {what}", retry_after=wait)
                    delay = wait
                elif response.is_success or response.status_code == 304:
                    return response
                elif response.status_code in (401, 403) or self.refused(response):
                    raise AuthFailed(
                        f"{self.provider} refused the credentials ({response.status_code}) "
                        f"on {what}: {excerpt(response)}"
                    )
                elif response.status_code in RETRYABLE:
                    delay = self._backoff(attempt)
                    if attempt == self.max_attempts:
                        raise Transient(
                            f"{self.provider} answered {response.status_code} on {what}"
                        )
                else:
                    raise Permanent(
                        f"{self.provider} answered {response.status_code} on {what}: "
                        f"{excerpt(response)}"
                    )
            self.stats.retries += 1
            logger.info(
                "connector.retry",
                extra={"provider": self.provider, "what": what, "attempt": attempt, "delay": delay},
            )
            await self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return float(random.uniform(0.5, 1.0) * min(self.max_delay, 2.0 ** (attempt - 1)))
