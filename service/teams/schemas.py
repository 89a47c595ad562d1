from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from service.schemas import Name, RequestModel, ResponseModel, Slug

Share = Annotated[float, Field(ge=0, le=1)]


class TeamCreate(RequestModel):
    key: Slug
    name: Name
    parent_id: uuid.UUID | None = None
    parent: str | None = Field(default=None, description="The parent team's key or id.")
    strategic_target: Share | None = Field(
        default=None, description="The share of effort this team aims to spend on strategy."
    )


class TeamUpdate(RequestModel):
    key: Slug | None = None
    name: Name | None = None
    parent_id: uuid.UUID | None = None
    parent: str | None = None
    strategic_target: Share | None = None


class TeamOut(ResponseModel):
    id: uuid.UUID
    key: str
    name: str
    parent_id: uuid.UUID | None
    parent: str | None = Field(description="The parent team's key.")
    strategic_target: float | None
    created_at: datetime
    updated_at: datetime
