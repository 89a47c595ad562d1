"""Old history goes; what is still owed stays, however old."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from service.db import Database
from service.models import InboundWebhook, WebhookDelivery, WebhookMessage
from tests.webhooks.helpers import endpoint


async def test_history_past_the_retention_is_pruned_and_nothing_owed(
    admin: httpx.AsyncClient, database: Database, app: Any
) -> None:
    made = await endpoint(admin, "https://hooks.example.com/okr")
    connection = await admin.post(
        "/v1/connections",
        json={"provider": "github", "name": "gh", "config": {"repos": ["o/r"]},
              "credentials": {"token": "t"}},
    )  # fmt: skip
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    endpoint_id = uuid.UUID(made["id"])
    messages = {
        "old delivered": WebhookMessage(endpoint_id=endpoint_id, event_type="webhook.test",
                                        body="{}", status="succeeded", created_at=old,
                                        delivered_at=old),
        "old failed": WebhookMessage(endpoint_id=endpoint_id, event_type="webhook.test",
                                     body="{}", status="failed", created_at=old),
        "old pending": WebhookMessage(endpoint_id=endpoint_id, event_type="webhook.test",
                                      body="{}", status="pending", created_at=old),
        "recent delivered": WebhookMessage(endpoint_id=endpoint_id, event_type="webhook.test",
                                           body="{}", status="succeeded", created_at=recent,
                                           delivered_at=recent),
    }  # fmt: skip
    connection_id = uuid.UUID(connection.json()["id"])
    inbound = {
        "old applied": InboundWebhook(connection_id=connection_id, delivery_id="a", body=b"{}",
                                      received_at=old, status="processed"),
        "old queued": InboundWebhook(connection_id=connection_id, delivery_id="b", body=b"{}",
                                     received_at=old, status="queued"),
        "recent ignored": InboundWebhook(connection_id=connection_id, delivery_id="c",
                                         body=b"{}", received_at=recent, status="ignored"),
    }  # fmt: skip
    async with database.transaction() as session:
        session.add_all([*messages.values(), *inbound.values()])
        await session.flush()
        for message in messages.values():
            session.add(
                WebhookDelivery(message_id=message.id, endpoint_id=endpoint_id, attempt=1,
                                attempted_at=message.created_at, duration_ms=1.0,
                                status_code=200, succeeded=True)
            )  # fmt: skip
    ids = {name: row.id for name, row in {**messages, **inbound}.items()}

    # Pending messages would be sent by this job run: keep them out of its way.
    async with database.transaction() as session:
        pending = await session.get(WebhookMessage, ids["old pending"])
        assert pending is not None
        pending.next_attempt_at = now + timedelta(days=1)
        session.add(pending)
    await app.state.services.queue.enqueue("prune_history")

    async with database.transaction() as session:
        kept_messages = {m.id for m in (await session.exec(select(WebhookMessage))).all()}
        kept_attempts = {d.message_id for d in (await session.exec(select(WebhookDelivery))).all()}
        kept_inbound = {w.id for w in (await session.exec(select(InboundWebhook))).all()}
    assert kept_messages == {ids["old pending"], ids["recent delivered"]}
    assert kept_attempts == kept_messages
    assert kept_inbound == {ids["old queued"], ids["recent ignored"]}
