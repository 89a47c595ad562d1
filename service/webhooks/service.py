"""Rules for webhook endpoints: checked URLs, secrets shown once, rotation, tests, retries."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.crypto import Vault
from service.errors import Conflict, InvalidInput, NotFound
from service.models import Team, WebhookDelivery, WebhookEndpoint, WebhookMessage
from service.pagination import Page, PageParams
from service.teams import service as teams
from service.webhooks import outbox
from service.webhooks.delivery import message_id
from service.webhooks.destinations import check_url
from service.webhooks.events import EventType
from service.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    MessageOut,
    SecretRotated,
)
from service.webhooks.signing import new_secret

logger = logging.getLogger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)


async def _team_key(session: AsyncSession, team_id: uuid.UUID | None) -> str | None:
    if team_id is None:
        return None
    team = await session.get(Team, team_id)
    return team.key if team else None


async def out(session: AsyncSession, endpoint: WebhookEndpoint) -> EndpointOut:
    expires = endpoint.previous_secret_expires_at
    return EndpointOut.model_validate(
        {
            **endpoint.model_dump(),
            "team": await _team_key(session, endpoint.team_id),
            "secret_rotated_at": expires - ROTATION_OVERLAP if expires else None,
        }
    )


async def get(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def create(
    *, session: AsyncSession, vault: Vault, data: EndpointCreate, allow_private: bool
) -> EndpointCreated:
    url = await check_url(data.url, allow_private=allow_private)
    team = await teams.resolver.from_body(session, "team", data.team_id, data.team)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        description=data.description,
        event_types=sorted({e.value for e in data.event_types}),
        team_id=team.id if team else None,
        secret_encrypted=vault.encrypt(secret),
        enabled=data.enabled,
    )
    session.add(endpoint)
    await session.flush()
    logger.info("webhook.endpoint_created", extra={"endpoint_id": str(endpoint.id)})
    return EndpointCreated.model_validate(
        {**(await out(session, endpoint)).model_dump(), "secret": secret}
    )


async def update(
    *,
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    data: EndpointUpdate,
    allow_private: bool,
) -> EndpointOut:
    changes = data.model_dump(exclude_unset=True)
    for field in ("url", "description", "event_types", "enabled"):
        if field in changes and changes[field] is None:
            raise InvalidInput.at(field, f"{field} cannot be null")
    if "url" in changes:
        endpoint.url = await check_url(changes["url"], allow_private=allow_private)
    if "description" in changes:
        endpoint.description = changes["description"]
    if "event_types" in changes:
        endpoint.event_types = sorted({EventType(e).value for e in changes["event_types"]})
    if changes.keys() & {"team_id", "team"}:
        team = await teams.resolver.from_body(session, "team", data.team_id, data.team)
        endpoint.team_id = team.id if team else None
    if changes.get("enabled") and not endpoint.enabled:
        # A fresh start: the five-day clock restarts and pending messages resume.
        endpoint.disabled_reason = endpoint.failing_since = None
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
        if not endpoint.enabled and endpoint.disabled_reason is None:
            endpoint.disabled_reason = "disabled through the API"
    endpoint.updated_at = datetime.now(UTC)
    session.add(endpoint)
    await session.flush()
    return await out(session, endpoint)


async def rotate_secret(
    *, session: AsyncSession, vault: Vault, endpoint: WebhookEndpoint
) -> SecretRotated:
    """A new secret; the current one keeps signing alongside it for 24 hours."""
    now = datetime.now(UTC)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_encrypted = vault.encrypt(secret)
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    logger.info("webhook.secret_rotated", extra={"endpoint_id": str(endpoint.id)})
    return SecretRotated(secret=secret, previous_valid_until=endpoint.previous_secret_expires_at)


async def list_page(*, session: AsyncSession, page: PageParams) -> Page[EndpointOut]:
    rows = list((await session.exec(page.apply(select(WebhookEndpoint), WebhookEndpoint.id))).all())
    items, cursor = page.split(rows, lambda e: e.id)
    return Page(items=[await out(session, e) for e in items], next_cursor=cursor)


def message_out(message: WebhookMessage) -> MessageOut:
    return MessageOut.model_validate(
        {
            **message.model_dump(),
            "webhook_id": message_id(message.id),
            "next_attempt_at": message.next_attempt_at if message.status == "pending" else None,
        }
    )


async def send_test(*, session: AsyncSession, endpoint: WebhookEndpoint) -> MessageOut:
    """A ``webhook.test`` message to this endpoint alone, through the normal delivery path."""
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it first")
    event = outbox.Event(
        type=EventType.webhook_test,
        data={"endpoint_id": str(endpoint.id), "message": "a test event from okr-sync"},
        about_team=False,
        endpoint_id=endpoint.id,
    )
    await outbox.emit(session, [event])
    latest = await session.exec(
        select(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id)
        .order_by(col(WebhookMessage.id).desc())
        .limit(1)
    )
    return message_out(latest.one())


async def get_message(session: AsyncSession, message: uuid.UUID) -> WebhookMessage:
    found = await session.get(WebhookMessage, message)
    if found is None:
        raise NotFound(f"no webhook message {message}")
    return found


async def retry(*, session: AsyncSession, message: WebhookMessage) -> MessageOut:
    """Send the message again now, whatever became of it; a failed one gets one more try."""
    endpoint = await get(session, message.endpoint_id)
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it first")
    now = datetime.now(UTC)
    if message.claimed_until is not None and message.claimed_until > now:
        raise Conflict("the message is being delivered right now")
    message.status, message.next_attempt_at = "pending", now
    session.add(message)
    await session.flush()
    outbox.request_delivery(session)
    return message_out(message)


async def deliveries(
    *, session: AsyncSession, endpoint: WebhookEndpoint, page: PageParams
) -> Page[DeliveryOut]:
    """Attempts to this endpoint, newest first."""
    stmt = select(WebhookDelivery, WebhookMessage.event_type).join(
        WebhookMessage, col(WebhookMessage.id) == WebhookDelivery.message_id
    )
    stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint.id)
    rows: list[Any] = list(
        (await session.exec(page.apply(stmt, WebhookDelivery.id, descending=True))).all()
    )
    items, cursor = page.split(rows, lambda row: row[0].id)
    return Page(
        items=[
            DeliveryOut.model_validate(
                {**d.model_dump(), "webhook_id": message_id(d.message_id), "event_type": kind}
            )
            for d, kind in items
        ],
        next_cursor=cursor,
    )
