"""A connector for a small JSON work tracker, written as a third party would write one.

The tracker's API: ``GET /api/me`` (auth check) and ``GET /api/items?after=&limit=``, which
returns items ordered by (updated, id) strictly after the ``after`` cursor, with ``cursor`` and
``has_more``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, Field, SecretStr

from connectors import (
    AuthFailed,
    Connector,
    Kind,
    Page,
    Permanent,
    RateLimited,
    StatusCategory,
    Transient,
    WorkItem,
)

KINDS = {"initiative": Kind.initiative, "epic": Kind.epic, "subtask": Kind.subtask}
STATES = {
    "open": StatusCategory.todo,
    "doing": StatusCategory.in_progress,
    "done": StatusCategory.done,
    "dropped": StatusCategory.canceled,
}


class ExampleConfig(BaseModel):
    base_url: str = Field(pattern=r"^https?://")
    team_map: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=50, ge=1, le=500)


class ExampleCredentials(BaseModel):
    token: SecretStr


def normalize(raw: dict[str, Any], team_map: dict[str, str]) -> WorkItem:
    return WorkItem(
        external_id=str(raw["id"]),
        key=raw["key"],
        url=raw.get("url", ""),
        title=raw.get("title", ""),
        kind=KINDS.get(raw["type"], Kind.issue),
        type_name=raw["type"],
        status=raw["state"],
        status_category=STATES[raw["state"]],
        team_key=team_map.get(raw["project"]),
        parent_external_id=str(raw["parent"]) if raw.get("parent") else None,
        parent_key=raw.get("parent_key"),
        labels=tuple(raw.get("labels", ())),
        containers=(raw["project"],),
        estimate=raw.get("points"),
        created_at=raw["created"],
        updated_at=raw["updated"],
        started_at=raw.get("started"),
        resolved_at=raw.get("finished"),
    )


class ExampleConnector(Connector[ExampleConfig, ExampleCredentials]):
    provider = "example"
    config_model = ExampleConfig
    credentials_model = ExampleCredentials

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.stats.api_calls += 1
        try:
            response = await self.http.get(
                self.config.base_url.rstrip("/") + path,
                params=params,
                headers={"Authorization": f"Bearer {self.credentials.token.get_secret_value()}"},
            )
        except httpx.TransportError as exc:
            raise Transient(f"tracker unreachable: {exc!r}") from exc
        if response.status_code in (401, 403):
            raise AuthFailed("the tracker refused the token")
        if response.status_code == 429:
            raise RateLimited(
                "slow down", retry_after=float(response.headers.get("Retry-After", 1))
            )
        if response.status_code >= 500:
            raise Transient(f"tracker answered {response.status_code}")
        if response.status_code >= 400:
            raise Permanent(f"tracker answered {response.status_code}: {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    async def check(self) -> None:
        await self._get("/api/me")

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        after = cursor
        while True:
            params = {"limit": self.config.page_size} | ({"after": after} if after else {})
            body = await self._get("/api/items", params)
            items = tuple(normalize(raw, self.config.team_map) for raw in body["items"])
            after = body["cursor"] or after
            yield Page(items=items, cursor=after)
            if not body["has_more"]:
                return
