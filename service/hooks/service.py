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
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import BadSignature, Connector, WebhookAction, WebhookEvent, WebhookRequest
from connectors import WorkItem as Item
from service.connections.service import build_connector, connector_of
from service.db import Prepared, execute, fetch_rows, json_text
from service.errors import Conflict, InvalidInput, InvalidSignature, NotFound
from service.models import Connection, InboundWebhook
from service.models.base import new_id, table_of, utcnow
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


class _Receiver(NamedTuple):
    """What receiving a connection's webhooks needs: built from its row, kept while the row's
    provider, config, credentials and secret stay the same (``Services.receivers``)."""

    provider: str
    connector: Connector[Any, Any]
    secret: str | None  # decrypted


# Read on every delivery, as a plain row: the ORM's get and a connector built anew (the
# config validated, the credentials decrypted) were a third of a delivery's API time.
_CONNECTION = Prepared(
    sa.select(
        col(Connection.provider), col(Connection.config), col(Connection.credentials_encrypted),
        col(Connection.webhook_secret_encrypted),
    ).where(col(Connection.id) == sa.bindparam("id"))
)  # fmt: skip


async def _receiver(
    session: AsyncSession, services: Services, connection_id: uuid.UUID
) -> _Receiver:
    rows = await fetch_rows(session, _CONNECTION, {"id": connection_id})
    if not rows:
        raise NotFound(f"no connection {connection_id}")
    provider, config, credentials, secret = rows[0]
    # Any edit of what the connector is built from gives another key, so an edited
    # connection (a rotated secret, say) is never verified with the old one.
    key = (connection_id, provider, json_text(config), credentials, secret)
    kept = services.receivers.get(key)
    if kept is None:
        connector = connector_of(
            services.registry, services.vault, services.http,
            provider=provider, config=config, credentials_encrypted=credentials,
        )  # fmt: skip
        kept = _Receiver(provider, connector, services.vault.decrypt(secret) if secret else None)
        services.keep_receiver(key, kept)
    return kept


@lru_cache(maxsize=4)
def _store_statement(dialect: str) -> Any:
    """Store a delivery unless its connection has one of that id already, returning its id:
    built once per dialect, its values all parameters."""
    table = table_of(InboundWebhook)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values({c.name: sa.bindparam(c.name, type_=c.type) for c in table.columns})
        .on_conflict_do_nothing(index_elements=["connection_id", "delivery_id"])
        .returning(table.c.id)
    )


async def receive(
    *, session: AsyncSession, services: Services, connection_id: uuid.UUID, request: WebhookRequest
) -> tuple[str, Outcome]:
    """The connection's provider, and what became of the delivery."""
    receiver = await _receiver(session, services, connection_id)
    return receiver.provider, await _receive(session, connection_id, receiver, request)


async def _receive(
    session: AsyncSession, connection_id: uuid.UUID, receiver: _Receiver, request: WebhookRequest
) -> Outcome:
    if receiver.secret is None:
        raise InvalidSignature("this connection has no webhook secret")
    try:
        receiver.connector.verify_webhook(request, receiver.secret)
    except BadSignature as exc:
        raise InvalidSignature(str(exc)) from None
    event = _parsed(receiver.connector, request)
    if event.action == WebhookAction.ping:
        return Outcome.ping
    if not event.delivery_id:
        raise InvalidInput("the delivery id header is missing")
    ignored = event.action == WebhookAction.ignore
    values = {
        "id": new_id(), "connection_id": connection_id, "delivery_id": event.delivery_id[:200],
        "body": request.body,
        "headers": {k: v for k, v in request.headers.items() if k not in _UNKEPT_HEADERS},
        "received_at": utcnow(), "status": "ignored" if ignored else "queued",
        "processed_at": None,
    }  # fmt: skip
    stmt = _store_statement(session.get_bind().dialect.name)
    stored = (await execute(session, stmt, values)).scalar_one_or_none()
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
