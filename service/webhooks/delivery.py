"""Delivering outbox messages: claim, send signed, log the attempt, schedule the next.

At least once: a message is claimed for a while (``CLAIM``), sent, then its outcome recorded.
A worker that dies between sending and recording leaves a claim that lapses, and the message is
sent again under the same ``webhook-id``, which lets receivers drop the repeat.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import telemetry
from service.crypto import Vault
from service.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from service.models.base import table_of
from service.services import Services
from service.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

# Seconds before each attempt: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
SCHEDULE = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.1
MAX_RETRY_AFTER = 10 * 3600
# Longer than an attempt can take (10 s timeout), so a live claim never lapses mid-send.
CLAIM = timedelta(seconds=60)
BATCH = 100
CONCURRENCY = 32
DISABLE_AFTER = timedelta(days=5)
KEEP_RESPONSE = 1024


def message_id(message: uuid.UUID) -> str:
    return f"msg_{message.hex}"


def retry_delay(attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds until the next attempt after ``attempts`` attempts, or None to give up. A
    receiver's ``Retry-After`` replaces the schedule's wait (it knows when it will be back)."""
    if attempts >= len(SCHEDULE):
        return None
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_RETRY_AFTER)
    return SCHEDULE[attempts] * rng.uniform(1 - JITTER, 1 + JITTER)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    token: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    body: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    duration_ms: float
    response: str
    error: str | None
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signing_keys(endpoint: WebhookEndpoint, vault: Vault, now: datetime) -> tuple[str, ...]:
    """The endpoint's secret, and the one it replaced while that is still honoured."""
    keys = [vault.decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        keys.append(vault.decrypt(endpoint.previous_secret_encrypted))
    return tuple(keys)


async def claim(services: Services, now: datetime, limit: int = BATCH) -> list[Claimed]:
    """Take up to ``limit`` due messages of enabled endpoints for this worker.

    On PostgreSQL concurrent workers skip each other's locked rows; on both backends the
    conditional update only takes rows no live claim holds, so no message goes to two workers.
    """
    token = uuid.uuid4()
    async with services.unit_of_work() as session:
        free = sa.or_(
            col(WebhookMessage.claimed_until).is_(None), col(WebhookMessage.claimed_until) < now
        )
        due = (
            select(WebhookMessage.id)
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookMessage.endpoint_id)
            .where(
                WebhookMessage.status == "pending",
                col(WebhookMessage.next_attempt_at) <= now,
                free,
                col(WebhookEndpoint.enabled),
            )
            .order_by(col(WebhookMessage.next_attempt_at))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=WebhookMessage)
        ids = list((await session.exec(due)).all())
        if not ids:
            return []
        messages = table_of(WebhookMessage)
        taken = (
            await session.exec(
                sa.update(messages)
                .where(messages.c.id.in_(ids), free)
                .values(claimed_until=now + CLAIM, claim_token=token)
                .returning(messages.c.id)
            )
        ).scalars()
        claimed_ids = set(taken)
        rows = (
            await session.exec(
                select(WebhookMessage, WebhookEndpoint)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookMessage.endpoint_id)
                .where(col(WebhookMessage.id).in_(claimed_ids))
            )
        ).all()
        return [
            Claimed(
                id=message.id,
                token=token,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                body=message.body,
                keys=signing_keys(endpoint, services.vault, now),
            )  # fmt: skip
            for message, endpoint in rows
        ]


async def send(client: httpx.AsyncClient, claimed: Claimed, now: datetime) -> Outcome:
    headers = signed_headers(
        message_id=message_id(claimed.id), timestamp=now, body=claimed.body, keys=claimed.keys
    )
    headers["user-agent"] = "okr-sync-webhooks"
    started = time.perf_counter()
    try:
        async with client.stream(
            "POST", claimed.url, content=claimed.body.encode(), headers=headers
        ) as response:
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= KEEP_RESPONSE:
                    break
            return Outcome(
                status_code=response.status_code,
                duration_ms=(time.perf_counter() - started) * 1000,
                response=kept[:KEEP_RESPONSE].decode("utf-8", "replace"),
                error=None,
                retry_after=parse_retry_after(response.headers.get("retry-after"), now),
            )
    except httpx.HTTPError as exc:
        return Outcome(
            status_code=None,
            duration_ms=(time.perf_counter() - started) * 1000,
            response="",
            error=f"{type(exc).__name__}: {exc}"[:500],
            retry_after=None,
        )


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    endpoint.enabled, endpoint.disabled_reason, endpoint.updated_at = False, reason, now
    logger.warning(
        "webhook.endpoint_disabled", extra={"endpoint_id": str(endpoint.id), "reason": reason}
    )


async def record(
    session: AsyncSession, claimed: Claimed, outcome: Outcome, now: datetime, rng: random.Random
) -> None:
    """Log the attempt and move the message on, unless its claim lapsed and another worker
    owns it now (the attempt is still logged: it happened)."""
    message = await session.get(WebhookMessage, claimed.id, with_for_update=True)
    if message is None:
        return  # its endpoint was deleted meanwhile
    endpoint = await session.get(WebhookEndpoint, claimed.endpoint_id, with_for_update=True)
    assert endpoint is not None
    owned = message.claim_token == claimed.token
    attempt = message.attempts + 1
    session.add(
        WebhookDelivery(
            message_id=message.id, endpoint_id=endpoint.id, attempt=attempt, attempted_at=now,
            duration_ms=outcome.duration_ms, status_code=outcome.status_code,
            succeeded=outcome.succeeded, response=outcome.response, error=outcome.error,
        )
    )  # fmt: skip
    telemetry.DELIVERIES.labels("delivered" if outcome.succeeded else "failed").inc()
    if not owned:
        return
    message.attempts = attempt
    message.claimed_until = message.claim_token = None
    if outcome.succeeded:
        message.status, message.delivered_at = "succeeded", now
        endpoint.failing_since = None
    else:
        endpoint.failing_since = endpoint.failing_since or now
        if outcome.status_code == 410:
            message.status = "failed"
            _disable(endpoint, "the receiver answered 410 Gone", now)
        elif now - endpoint.failing_since >= DISABLE_AFTER:
            message.status = "failed"
            _disable(endpoint, "every delivery failed for 5 days", now)
        else:
            delay = retry_delay(attempt, outcome.retry_after, rng)
            if delay is None:
                message.status = "failed"
            else:
                message.next_attempt_at = now + timedelta(seconds=delay)
        if message.status == "failed":
            telemetry.MESSAGES_GIVEN_UP.inc()
    session.add_all([message, endpoint])


async def deliver_due(
    services: Services, client: httpx.AsyncClient, *, rng: random.Random | None = None
) -> int:
    """Send every due message, a batch at a time, until none is due; returns attempts made.

    A batch is sent concurrently and its outcomes recorded in one transaction: a worker that
    dies before that commit has its claims lapse, and the batch goes out again.
    """
    rng = rng or random.Random()
    semaphore = asyncio.Semaphore(CONCURRENCY)
    made = 0

    async def one(claimed: Claimed) -> tuple[Claimed, Outcome, datetime]:
        async with semaphore:
            outcome = await send(client, claimed, datetime.now(UTC))
        return claimed, outcome, datetime.now(UTC)

    while batch := await claim(services, datetime.now(UTC)):
        results = await asyncio.gather(*(one(claimed) for claimed in batch))
        async with services.unit_of_work() as session:
            for claimed, outcome, at in results:
                await record(session, claimed, outcome, at, rng)
        for claimed, outcome, _ in results:
            logger.info(
                "webhook.attempt",
                extra={
                    "message_id": message_id(claimed.id), "endpoint_id": str(claimed.endpoint_id),
                    "status_code": outcome.status_code, "succeeded": outcome.succeeded,
                    "duration_ms": round(outcome.duration_ms, 1),
                },
            )  # fmt: skip
        made += len(batch)
    return made


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete messages that ended (delivered or given up) before ``before``; their attempts
    go with them. Pending messages stay, however old."""
    messages = table_of(WebhookMessage)
    ended = sa.or_(
        sa.and_(messages.c.status == "succeeded", messages.c.delivered_at < before),
        sa.and_(messages.c.status == "failed", messages.c.created_at < before),
    )
    gone = (await session.exec(sa.delete(messages).where(ended).returning(messages.c.id))).all()
    return len(gone)
