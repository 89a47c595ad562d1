"""A thin synchronous adapter over the ``jira`` library, called from threads.

The library (built on requests) wraps some endpoints; the ones it does not (enhanced search,
bulk fetches, board configuration) go through its own session, so authentication, headers
and connection reuse are the library's. Its built-in retries are turned off: they double
``Retry-After``, skip 502/504 and sleep long on resets. Here a 429 waits exactly what Jira
asks, 5xx and resets back off exponentially, and after a few attempts the fault goes to the
sync engine, which resumes the run from its checkpoint.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import requests
from jira import JIRA, JIRAError

from connectors.errors import AuthFailed, Permanent, RateLimited, Transient
from connectors.jira.config import JiraConfig, JiraCredentials

logger = logging.getLogger(__name__)

T = TypeVar("T")
TIMEOUT = (10.0, 120.0)
RETRYABLE = frozenset({500, 502, 503, 504})


class JiraClient:
    def __init__(
        self,
        config: JiraConfig,
        credentials: JiraCredentials,
        *,
        max_attempts: int = 5,
        max_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = config.url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_delay = max_delay
        self.sleep = sleep
        self.calls = 0
        auth: dict[str, Any]
        if credentials.token is not None:
            auth = {"token_auth": credentials.token.get_secret_value()}
        else:
            assert credentials.email is not None
            assert credentials.api_token is not None
            auth = {"basic_auth": (credentials.email, credentials.api_token.get_secret_value())}
        self.jira = JIRA(
            server=self.base, max_retries=0, get_server_info=False, timeout=TIMEOUT, **auth
        )
        self.jira._session.hooks["response"].append(self._count)

    def _count(self, *_: Any, **__: Any) -> None:
        # A requests hook: every HTTP exchange, retries included, is one API call.
        self.calls += 1

    def close(self) -> None:
        self.jira._session.close()

    def call(self, action: Callable[[], T], what: str) -> T:
        """Run one request with the retry policy, translating failures to connector errors."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return action()
            except JIRAError as exc:
                status = exc.status_code or 0
                if status in (401, 403):
                    raise AuthFailed(f"Jira refused the credentials ({status}) on {what}") from exc
                if status == 429:
                    asked = _retry_after(exc)
                    delay = asked if asked is not None else self._backoff(attempt)
                    if attempt == self.max_attempts:
                        raise RateLimited(f"Jira rate limit on {what}", retry_after=delay) from exc
                elif status in RETRYABLE:
                    delay = self._backoff(attempt)
                    if attempt == self.max_attempts:
                        raise Transient(f"Jira answered {status} on {what}") from exc
                else:
                    raise Permanent(f"Jira answered {status} on {what}: {_text(exc)}") from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                delay = self._backoff(attempt)
                if attempt == self.max_attempts:
                    raise Transient(f"Jira unreachable on {what}: {type(exc).__name__}") from exc
            except orjson.JSONDecodeError as exc:  # a proxy's error page, a cut-off body
                delay = self._backoff(attempt)
                if attempt == self.max_attempts:
                    raise Transient(f"Jira sent a body that is not JSON on {what}") from exc
            logger.info("jira.retry", extra={"what": what, "attempt": attempt, "delay": delay})
            self.sleep(min(delay, self.max_delay))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return float(random.uniform(0.5, 1.0) * min(self.max_delay, 2.0 ** (attempt - 1)))

    # Bodies are decoded by orjson: a page of 1,000 issues is over a megabyte, and the
    # standard decoder took three times as long on it.
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.base + path
        return self.call(
            lambda: orjson.loads(self.jira._session.get(url, params=params).content), f"GET {path}"
        )

    def post(self, path: str, body: dict[str, Any]) -> Any:
        url = self.base + path
        return self.call(
            lambda: orjson.loads(self.jira._session.post(url, json=body).content), f"POST {path}"
        )

    # Endpoints the library wraps.
    def server_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.call(self.jira.server_info, "serverInfo")
        return info

    def myself(self) -> dict[str, Any]:
        me: dict[str, Any] = self.call(self.jira.myself, "myself")
        return me

    def fields(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call(self.jira.fields, "fields")
        return found


def _retry_after(exc: JIRAError) -> float | None:
    headers = getattr(exc.response, "headers", None) or exc.headers or {}
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _text(exc: JIRAError) -> str:
    return str(exc.text or "")[:300]
