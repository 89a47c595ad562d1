from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from service.schemas import NOT_BLANK, RequestModel, ResponseModel
from service.webhooks.events import EventType

Url = Annotated[str, StringConstraints(min_length=1, max_length=2000), NOT_BLANK]
Description = Annotated[str, StringConstraints(max_length=500)]
EventTypes = Annotated[list[EventType], Field(max_length=len(EventType))]


class EndpointCreate(RequestModel):
    url: Url = Field(description="Where events are POSTed; public http(s) addresses only.")
    description: Description = ""
    event_types: EventTypes = Field(
        default_factory=list, description="The event types to receive; empty: all of them."
    )
    team_id: uuid.UUID | None = None
    team: str | None = Field(
        default=None,
        description="Team key or id: events about a team are sent only for this team's "
        "subtree. Events about no team (`sync.*`, `webhook.test`) are always sent.",
    )
    enabled: bool = True


class EndpointUpdate(RequestModel):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    team_id: uuid.UUID | None = None
    team: str | None = None
    enabled: bool | None = Field(
        default=None, description="Re-enabling an endpoint resumes its pending messages."
    )


class EndpointOut(ResponseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[EventType]
    team_id: uuid.UUID | None
    team: str | None = Field(description="The filter team's key; null: every team.")
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    secret_rotated_at: datetime | None = Field(
        description="When the secret was last rotated; the old one signs for 24 hours after."
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The `whsec_` signing secret, shown this once.")


class SecretRotated(ResponseModel):
    secret: str = Field(description="The new `whsec_` secret, shown this once.")
    previous_valid_until: datetime = Field(
        description="Until then every message is signed with both secrets."
    )


MessageStatus = Literal["pending", "succeeded", "failed"]


class MessageOut(ResponseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    endpoint_id: uuid.UUID
    event_type: EventType
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryOut(ResponseModel):
    id: uuid.UUID
    message_id: uuid.UUID
    webhook_id: str
    event_type: EventType
    attempt: int
    attempted_at: datetime
    duration_ms: float
    status_code: int | None
    succeeded: bool
    response: str = Field(description="The first KiB of the receiver's answer.")
    error: str | None
