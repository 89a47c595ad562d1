"""Create OKR entities through the API, as a client would."""

from __future__ import annotations

from itertools import count
from typing import Any

import httpx

_seq = count(1)


async def created(response_coro: Any) -> dict[str, Any]:
    response: httpx.Response = await response_coro
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def team(client: httpx.AsyncClient, key: str | None = None, **fields: Any) -> dict[str, Any]:
    key = key or f"team-{next(_seq)}"
    body = {"key": key, "name": fields.pop("name", key.title()), **fields}
    return await created(client.post("/v1/teams", json=body))


async def period(
    client: httpx.AsyncClient,
    name: str | None = None,
    start: str = "2026-10-01",
    end: str = "2027-01-01",
) -> dict[str, Any]:
    body = {"name": name or f"P-{next(_seq)}", "start": start, "end": end}
    return await created(client.post("/v1/periods", json=body))


async def objective(client: httpx.AsyncClient, period: str, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Objective {next(_seq)}", "period": period, **fields}
    return await created(client.post("/v1/objectives", json=body))


async def key_result(client: httpx.AsyncClient, objective_id: str, **fields: Any) -> dict[str, Any]:
    body = {"objective_id": objective_id, "title": f"KR {next(_seq)}", "target_value": 100}
    body.update(fields)
    return await created(client.post("/v1/key-results", json=body))
