"""Inbound provider webhooks: verify, drop retries, store, answer; a job applies them.

Providers drop events (GitHub never retries, Linear gives up after hours), so webhooks only
lower latency: the scheduled incremental sync stays the source of truth.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import BadSignature, Connector, WebhookAction, WebhookEvent, WebhookRequest
from connectors import WorkItem as Item
from service.connections.service import build_connector
from service.errors import Conflict, InvalidInput, InvalidSignature, NotFound
from service.models import Connection, InboundWebhook
from service.models.base import table_of
from service.services import Services
from service.sync import service as syncs
from service.sync import store
from service.worker.enqueue import after_commit

logger = logging.getLogger(__name__)

# Headers a provider's event is read from later; credentials and cookies are never kept.
_UNKEPT_HEADERS = frozenset({"authorization", "cookie"})


PROCESS_JOB = "process_webhooks"


class Outcome(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    ignored = "ignored"
    ping = "ping"


async def _connector(
    session: AsyncSession, services: Services, connection_id: uuid.UUID
) -> tuple[Connection, Connector[Any, Any]]:
    connection = await session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(f"no connection {connection_id}")
    connector = build_connector(
        registry=services.registry, vault=services.vault, connection=connection,
        http=services.http,
    )  # fmt: skip
    return connection, connector


def _parsed(connector: Connector[Any, Any], request: WebhookRequest) -> WebhookEvent:
    # Parsing reads only the signed payload, so any of these means a payload of the wrong
    # shape (a list where an object belongs, say), which the fuzz tests send: a 422.
    try:
        return connector.parse_webhook(request)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidInput(f"not an event this connection understands: {exc}") from None


async def receive(
    *, session: AsyncSession, services: Services, connection_id: uuid.UUID, request: WebhookRequest
) -> tuple[str, Outcome]:
    """The connection's provider, and what became of the delivery."""
    connection, connector = await _connector(session, services, connection_id)
    return connection.provider, await _receive(session, connection, connector, services, request)


async def _receive(
    session: AsyncSession,
    connection: Connection,
    connector: Connector[Any, Any],
    services: Services,
    request: WebhookRequest,
) -> Outcome:
    if not connection.webhook_secret_encrypted:
        raise InvalidSignature("this connection has no webhook secret")
    try:
        connector.verify_webhook(
            request, services.vault.decrypt(connection.webhook_secret_encrypted)
        )
    except BadSignature as exc:
        raise InvalidSignature(str(exc)) from None
    event = _parsed(connector, request)
    if event.action == WebhookAction.ping:
        return Outcome.ping
    if not event.delivery_id:
        raise InvalidInput("the delivery id header is missing")
    ignored = event.action == WebhookAction.ignore
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = InboundWebhook(
        connection_id=connection.id,
        delivery_id=event.delivery_id[:200],
        body=request.body,
        headers={k: v for k, v in request.headers.items() if k not in _UNKEPT_HEADERS},
        status="ignored" if ignored else "queued",
    )
    values = {c.name: getattr(row, c.name) for c in table_of(InboundWebhook).columns}
    stmt = (
        insert(table_of(InboundWebhook))
        .values(values)
        .on_conflict_do_nothing(index_elements=["connection_id", "delivery_id"])
        .returning(table_of(InboundWebhook).c.id)
    )
    stored = (await session.exec(stmt)).scalar_one_or_none()
    if stored is None:
        return Outcome.duplicate
    if ignored:
        return Outcome.ignored
    after_commit(session, PROCESS_JOB)
    return Outcome.accepted


BATCH = 500


async def _claim(session: AsyncSession) -> list[InboundWebhook]:
    """The oldest queued deliveries; on PostgreSQL those another worker holds are skipped."""
    stmt = (
        select(InboundWebhook)
        .where(InboundWebhook.status == "queued")
        .order_by(col(InboundWebhook.received_at), col(InboundWebhook.id))
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


async def _apply(
    session: AsyncSession,
    services: Services,
    connection_id: uuid.UUID,
    deliveries: list[InboundWebhook],
    now: datetime,
) -> Counter[str]:
    """One connection's deliveries, in the order received; consecutive upserts are stored
    together, which is what makes a burst cheap."""
    connection, connector = await _connector(session, services, connection_id)
    actions: Counter[str] = Counter()
    upserts: list[Item] = []
    wants_sync = False

    async def flush() -> None:
        if upserts:
            await store.store_items(session, connection.id, upserts, now=now, run_id=None)
            upserts.clear()

    for delivery in deliveries:
        event = connector.parse_webhook(
            WebhookRequest(headers=delivery.headers, body=delivery.body)
        )
        actions[event.action.value] += 1
        if event.action == WebhookAction.upsert:
            upserts.extend(event.items)
        elif event.action == WebhookAction.delete:
            await flush()
            await store.delete_items(session, connection.id, event.deleted, now)
        elif event.action == WebhookAction.sync:
            wants_sync = True
        delivery.status, delivery.processed_at = "processed", now
        session.add(delivery)
    await flush()
    if wants_sync:
        try:
            async with session.begin_nested():
                await syncs.request_sync(session=session, connection=connection, mode="incremental")
        except Conflict:
            pass  # a sync is queued or running; the next one picks up what it misses
    return actions


async def process(services: Services) -> int:
    """Apply the stored deliveries that wait, a batch per transaction, until none is left.

    A crash rolls the batch back to ``queued`` and a later run applies it: upserts and
    deletions are idempotent, so applying one twice changes nothing.
    """
    done = 0
    while True:
        async with services.unit_of_work() as session:
            batch = await _claim(session)
            if not batch:
                return done
            by_connection: dict[uuid.UUID, list[InboundWebhook]] = defaultdict(list)
            for delivery in batch:
                by_connection[delivery.connection_id].append(delivery)
            now = datetime.now(UTC)
            # Connections in one order for every worker: each takes its writers' lock
            # (sync.repository.take_turns), and two batches taking them in other orders
            # could deadlock. Deliveries keep their received order within a connection.
            for connection_id in sorted(by_connection):
                deliveries = by_connection[connection_id]
                actions = await _apply(session, services, connection_id, deliveries, now)
                logger.info(
                    "webhook.processed",
                    extra={"connection_id": str(connection_id), "deliveries": len(deliveries),
                           **{f"action_{k}": v for k, v in actions.items()}},
                )  # fmt: skip
        done += len(batch)


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete deliveries applied or ignored before ``before``; queued ones stay."""
    inbound = table_of(InboundWebhook)
    done = sa.and_(inbound.c.status != "queued", inbound.c.received_at < before)
    gone = (await session.exec(sa.delete(inbound).where(done).returning(inbound.c.id))).all()
    return len(gone)
