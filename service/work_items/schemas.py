from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from connectors import Kind, StatusCategory
from service.schemas import ResponseModel


class WorkItemOut(ResponseModel):
    id: uuid.UUID
    connection_id: uuid.UUID
    external_id: str
    key: str
    url: str
    title: str
    kind: Kind
    type_name: str
    status: str
    status_category: StatusCategory
    team_id: uuid.UUID | None
    team: str | None = Field(description="The owning team's key, when it maps to a team.")
    parent_id: uuid.UUID | None
    parent: str | None = Field(description="The parent item's key.")
    labels: list[str]
    containers: list[str]
    estimate: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    resolved_at: datetime | None
    deleted_at: datetime | None
