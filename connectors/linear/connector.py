"""The Linear connector: GraphQL over httpx.

Initiatives, then projects (epics), then issues and sub-issues of the configured teams, each
list read oldest change first. After each page the next request starts again from the page's
last ``updatedAt`` (``gte``, millisecond resolution) rather than from the page's end cursor:
an item edited during the sync moves to the end of an update-ordered list, and a resume from
any page's checkpoint must not depend on where it used to be. The end cursor is followed only
when a whole page shares one ``updatedAt``. Items read twice at a boundary are harmless, as
upserts are idempotent.

Label names come from one read of the label catalogue per sync, so each issue carries only
``labelIds`` and a page of 250 issues stays far inside Linear's complexity limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from connectors.base import Connector
from connectors.errors import Permanent
from connectors.grouping import grouped
from connectors.http import Requester, retry_after
from connectors.linear import documents, mapping, webhooks
from connectors.linear.config import LinearConfig, LinearCredentials
from connectors.models import Page, WorkItem
from connectors.prefetch import ahead
from connectors.webhooks import WebhookEvent, WebhookRequest

EPOCH = "1970-01-01T00:00:00.000Z"
AUTH_CODES = frozenset({"AUTHENTICATION_ERROR", "FORBIDDEN"})
RESET_HEADERS = ("x-ratelimit-requests-reset", "x-ratelimit-complexity-reset")


def _error_codes(response: httpx.Response) -> set[str]:
    try:
        errors = response.json().get("errors") or ()
    except (ValueError, AttributeError):
        return set()
    return {str((e.get("extensions") or {}).get("code", "")) for e in errors}


def rate_limit_wait(response: httpx.Response) -> float | None:
    """Linear answers a rate limit with ``RATELIMITED`` in the GraphQL errors (HTTP 400 or
    429); its ``X-RateLimit-*-Reset`` headers are epoch milliseconds."""
    if response.status_code != 429 and "RATELIMITED" not in _error_codes(response):
        return None
    now = time.time()
    asked = retry_after(response.headers, now)
    if asked is not None:
        return asked
    resets = []
    for name in RESET_HEADERS:
        try:
            resets.append(float(response.headers[name]) / 1000 - now)
        except (KeyError, ValueError):
            continue
    return max(0.0, *resets) if resets else 60.0


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def refused(response: httpx.Response) -> bool:
    return bool(AUTH_CODES & _error_codes(response))


@dataclass
class Cursor:
    """The ``updatedAt`` each list resumes from."""

    since: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"v": 1, "since": dict(sorted(self.since.items()))})

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        return cls(dict(json.loads(text).get("since", {}))) if text else cls()


class LinearConnector(Connector[LinearConfig, LinearCredentials]):
    provider: ClassVar[str] = "linear"
    config_model: ClassVar[type[BaseModel]] = LinearConfig
    credentials_model: ClassVar[type[BaseModel]] = LinearCredentials

    def verify_webhook(self, request: WebhookRequest, secret: str) -> None:
        webhooks.verify(request, secret)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        return webhooks.parse(request)

    @property
    def requester(self) -> Requester:
        key = self.credentials.api_key.get_secret_value()
        # Personal API keys go bare; OAuth tokens as bearer tokens.
        authorization = key if key.startswith("lin_api_") else f"Bearer {key}"
        return Requester(
            self.http,
            provider="Linear",
            stats=self.stats,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
            rate_limited=rate_limit_wait,
            refused=refused,
        )

    async def _query(
        self, requester: Requester, name: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        response = await requester.send(
            "POST",
            self.config.api_url,
            json={"query": documents.ALL[name], "variables": variables, "operationName": name},
            what=f"query {name}",
        )
        body = response.json()
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", "")) for e in body["errors"])
            raise Permanent(f"Linear refused query {name}: {messages[:300]}")
        data: dict[str, Any] = body["data"]
        return data

    async def check(self) -> None:
        data = await self._query(self.requester, "Viewer", {"teams": self.config.teams})
        found = {team["key"] for team in data["teams"]["nodes"]}
        missing = [key for key in self.config.teams if key not in found]
        if missing:
            raise Permanent(f"Linear has no team {', '.join(missing)} visible to this key")

    async def fetch(self, cursor: str | None) -> AsyncGenerator[Page, None]:
        state = Cursor.decode(cursor)
        async for page in ahead(grouped(self._pages(state))):
            yield page

    async def _labels(self, requester: Requester) -> dict[str, str]:
        names: dict[str, str] = {}
        after: str | None = None
        while True:
            found = (await self._query(requester, "Labels", {"after": after}))["issueLabels"]
            names.update({label["id"]: label["name"] for label in found["nodes"]})
            if not found["pageInfo"]["hasNextPage"]:
                return names
            after = found["pageInfo"]["endCursor"]

    async def _pages(self, cursor: Cursor) -> AsyncIterator[Page]:
        requester = self.requester
        config = self.config
        labels = await self._labels(requester)
        lists: list[tuple[str, str, Callable[[Mapping[str, Any]], WorkItem]]] = [
            ("Initiatives", "initiatives", mapping.initiative),
            ("Projects", "projects",
             lambda raw: mapping.project(raw, teams=config.teams, team_map=config.team_map)),
            ("Issues", "issues",
             lambda raw: mapping.issue(raw, team_map=config.team_map, labels=labels)),
        ]  # fmt: skip
        for document, field_name, normalize in lists:
            async for page in self._list(requester, cursor, document, field_name, normalize):
                yield page

    async def _list(
        self,
        requester: Requester,
        cursor: Cursor,
        document: str,
        name: str,
        normalize: Callable[[Mapping[str, Any]], WorkItem],
    ) -> AsyncIterator[Page]:
        since = cursor.since.get(name, EPOCH)
        after: str | None = None
        previous: dict[str, str] = {}
        while True:
            variables = {"teams": self.config.teams, "since": since, "after": after}
            found = (await self._query(requester, document, variables))[name]
            nodes: list[dict[str, Any]] = found["nodes"]
            fresh = [node for node in nodes if previous.get(node["id"]) != node["updatedAt"]]
            previous = {node["id"]: node["updatedAt"] for node in nodes}
            items = tuple(normalize(node) for node in fresh)
            newest = max((node["updatedAt"] for node in nodes), default=since, key=_instant)
            more = found["pageInfo"]["hasNextPage"]
            if _instant(newest) > _instant(since) or not more:
                since, after = max(newest, since, key=_instant), None
            else:  # a whole page within one millisecond: page on through it
                after = found["pageInfo"]["endCursor"]
            cursor.since[name] = since
            yield Page(items=items, cursor=cursor.encode())
            if not more:
                return
