from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.db import Database
from service.models import WebhookMessage
from tests import factories
from tests.fakes.receiver import Received

# Every secret a test was given: the receiver fixture checks each delivery against them.
SECRETS: list[str] = []


async def endpoint(admin: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    made = await factories.created(admin.post("/v1/webhook-endpoints", json={"url": url} | fields))
    SECRETS.append(made["secret"])
    return made


def verifies(received: Received) -> bool:
    """Whether some secret this test was given verifies the delivery, as a receiver would."""
    for secret in SECRETS:
        try:
            Webhook(secret).verify(received.body, received.headers)
        except WebhookVerificationError:
            continue
        return True
    return False


def verified(received: Received, *secrets: str) -> dict[str, Any]:
    """The body, checked as a receiver checks it, with the standardwebhooks library; every
    secret given must verify on its own."""
    body: dict[str, Any] = {}
    for secret in secrets:
        body = Webhook(secret).verify(received.body, received.headers)
    return body


async def messages(database: Database) -> list[WebhookMessage]:
    async with database.transaction() as session:
        rows = await session.exec(select(WebhookMessage).order_by(col(WebhookMessage.id)))
        return list(rows.all())


async def time_passes(database: Database, seconds: float) -> None:
    """Move every pending message's next attempt back as if ``seconds`` had gone by."""
    async with database.transaction() as session:
        pending = await session.exec(
            select(WebhookMessage).where(WebhookMessage.status == "pending")
        )
        for message in pending.all():
            message.next_attempt_at -= timedelta(seconds=seconds)
            session.add(message)


async def deliver(app: Any) -> None:
    await app.state.services.queue.enqueue("deliver_webhooks")


async def scan(app: Any, *, stale: bool = False) -> None:
    await app.state.services.queue.enqueue("scan_stale_key_results" if stale else "scan_events")


def events(received: list[Received], kind: str | None = None) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body) for r in received]
    return [b for b in bodies if kind is None or b["type"] == kind]


def seconds_until(moment: datetime) -> float:
    return (moment - datetime.now(UTC)).total_seconds()
