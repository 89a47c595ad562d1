"""Outbound webhooks: subscriptions, the messages owed to them, and every delivery attempt."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    url: str = Field(sa_type=sa.Text)
    description: str = Field(default="", max_length=500)
    # Empty: every event type.
    event_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Events about a team go only to endpoints whose team is that team or above it.
    team_id: uuid.UUID | None = Field(default=None, foreign_key="teams.id", ondelete="RESTRICT")
    secret_encrypted: str = Field(sa_type=sa.Text)
    # After a rotation the old secret signs too, until it expires.
    previous_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    # The first failure since the last success: five days of failing disables the endpoint.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookMessage(SQLModel, table=True):
    """One event owed to one endpoint: the outbox row, written in the transaction of the change
    that caused it. Its id is the ``webhook-id`` of every attempt, so receivers can dedupe."""

    __tablename__ = "webhook_messages"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    endpoint_id: uuid.UUID = Field(
        foreign_key="webhook_endpoints.id", index=True, ondelete="CASCADE"
    )
    event_type: str = Field(max_length=64)
    # The exact bytes sent on every attempt.
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # pending (an attempt is due at next_attempt_at), succeeded, failed (gave up)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A worker holds a claimed message until then; past it, a crashed worker's claim lapses.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_token: uuid.UUID | None = None
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        # The delivery job's scan: due pending messages, oldest first.
        sa.Index(
            "ix_webhook_messages_due",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver a message."""

    __tablename__ = "webhook_deliveries"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    message_id: uuid.UUID = Field(foreign_key="webhook_messages.id", index=True, ondelete="CASCADE")
    endpoint_id: uuid.UUID = Field(
        foreign_key="webhook_endpoints.id", index=True, ondelete="CASCADE"
    )
    attempt: int
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: float
    status_code: int | None = None
    succeeded: bool
    # The first KiB of the answer, or what went wrong before there was one.
    response: str = Field(default="", sa_type=sa.Text)
    error: str | None = Field(default=None, max_length=500)
