from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from service.schemas import Name, RequestModel, ResponseModel

Secret = Annotated[str, StringConstraints(min_length=16, max_length=500)]
Interval = Annotated[int, Field(ge=0, le=7 * 24 * 60)]


class ConnectionCreate(RequestModel):
    provider: str = Field(description="`jira`, `linear`, `github`, or an installed plugin's name.")
    name: Name
    config: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, Any] = Field(description="Write-only; stored encrypted.")
    webhook_secret: Secret | None = Field(
        default=None, description="For inbound webhooks; generated and shown once when absent."
    )
    sync_interval_minutes: Interval = Field(default=0, description="0: no scheduled syncs.")


class ConnectionUpdate(RequestModel):
    name: Name | None = None
    config: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    webhook_secret: Secret | None = None
    sync_interval_minutes: Interval | None = None


class ConnectionOut(ResponseModel):
    id: uuid.UUID
    provider: str
    name: str
    config: dict[str, Any]
    sync_interval_minutes: int
    last_sync_status: str | None
    last_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectionCreated(ConnectionOut):
    webhook_secret: str | None = Field(
        description="The generated webhook secret, shown this once; null when you gave one."
    )


class CheckResult(ResponseModel):
    ok: bool
    error: str | None = None
