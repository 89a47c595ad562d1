"""Inbound provider webhooks, stored before they are processed."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class InboundWebhook(SQLModel, table=True):
    """One verified delivery. The provider's delivery id stays the same across its retries,
    so a retry finds its row and is dropped."""

    __tablename__ = "inbound_webhooks"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID = Field(foreign_key="connections.id", ondelete="CASCADE")
    delivery_id: str = Field(max_length=200)
    body: bytes = Field(sa_type=sa.LargeBinary)
    headers: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # queued, processed (items stored or a sync requested), ignored (an event not used)
    status: str = Field(default="queued", max_length=16)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint(
            "connection_id", "delivery_id", name="uq_inbound_webhooks_connection_delivery"
        ),
    )
