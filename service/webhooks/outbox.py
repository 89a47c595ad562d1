"""The outbox: events become messages in the transaction of the change that caused them.

A message is one event owed to one subscribed endpoint. It is written with the change, so a
crash either keeps both or neither; the delivery job sends it after the commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import telemetry
from service.models import Team, WebhookEndpoint, WebhookMessage
from service.models.base import new_id, table_of
from service.webhooks.events import EventType
from service.worker.enqueue import after_commit

DELIVER_JOB = "deliver_webhooks"
SCAN_JOB = "scan_events"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    # The entity in the shape the API returns it, plus what the event needs; JSON-ready.
    data: dict[str, Any]
    # The team an event is about (an item's, an objective's, the team itself), or None for
    # an event about no team. Endpoints filtered to a team get events about its subtree.
    team_id: uuid.UUID | None = None
    # Events such as sync.completed concern no team at all: every subscriber gets them.
    about_team: bool = True
    # webhook.test goes to one endpoint only.
    endpoint_id: uuid.UUID | None = None


def body_of(event: Event, now: datetime) -> str:
    return json.dumps(
        {"type": event.type.value, "timestamp": now.isoformat(), "data": event.data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


async def _team_parents(session: AsyncSession) -> dict[uuid.UUID, uuid.UUID | None]:
    rows = await session.exec(select(Team.id, Team.parent_id))
    return dict(rows.all())


def _within(
    team_id: uuid.UUID | None, root: uuid.UUID, parents: dict[uuid.UUID, uuid.UUID | None]
) -> bool:
    seen: set[uuid.UUID] = set()
    current = team_id
    while current is not None and current not in seen:
        if current == root:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


async def emit(session: AsyncSession, events: Sequence[Event], now: datetime | None = None) -> int:
    """Write a message for each event and each enabled endpoint subscribed to it; the delivery
    job is asked for once the transaction commits. Returns how many messages were written."""
    if not events:
        return 0
    for event in events:
        telemetry.EVENTS.labels(event.type.value).inc()
    endpoints = list(
        (await session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.enabled)))).all()
    )
    if not endpoints:
        return 0
    now = now or datetime.now(UTC)
    parents = await _team_parents(session) if any(e.team_id for e in endpoints) else {}
    rows: list[dict[str, Any]] = []
    for event in events:
        body: str | None = None
        for endpoint in endpoints:
            if event.endpoint_id is not None and endpoint.id != event.endpoint_id:
                continue
            if endpoint.event_types and event.type.value not in endpoint.event_types:
                continue
            if (
                endpoint.team_id is not None
                and event.about_team
                and not _within(event.team_id, endpoint.team_id, parents)
            ):
                continue
            body = body or body_of(event, now)
            rows.append(
                {"id": new_id(), "endpoint_id": endpoint.id, "event_type": event.type.value,
                 "body": body, "created_at": now, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "claimed_until": None, "claim_token": None,
                 "delivered_at": None}
            )  # fmt: skip
    if rows:
        await session.exec(sa.insert(table_of(WebhookMessage)), params=rows)
        after_commit(session, DELIVER_JOB)
    return len(rows)


def request_delivery(session: AsyncSession) -> None:
    """Run the delivery job once this transaction commits."""
    after_commit(session, DELIVER_JOB)


def request_scan(session: AsyncSession) -> None:
    """Look for events (service.webhooks.scans) once this transaction commits."""
    after_commit(session, SCAN_JOB)
