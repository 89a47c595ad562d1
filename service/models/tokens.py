"""API tokens: only a hash of each token is stored."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    scope: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    # The first characters of the token, enough for a person to tell tokens apart in a list.
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),)
