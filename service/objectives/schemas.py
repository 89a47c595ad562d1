from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from service.schemas import RequestModel, ResponseModel, Text, Title


class ObjectiveCreate(RequestModel):
    title: Title
    description: Text = ""
    period_id: uuid.UUID | None = None
    period: str | None = Field(default=None, description="Period name or id; one is required.")
    team_id: uuid.UUID | None = None
    team: str | None = Field(default=None, description="Team key or id; none = company level.")
    parent_id: uuid.UUID | None = Field(
        default=None, description="The objective this one aligns to."
    )


class ObjectiveUpdate(RequestModel):
    title: Title | None = None
    description: Text | None = None
    period_id: uuid.UUID | None = None
    period: str | None = None
    team_id: uuid.UUID | None = None
    team: str | None = None
    parent_id: uuid.UUID | None = None


class ObjectiveOut(ResponseModel):
    id: uuid.UUID
    title: str
    description: str
    period_id: uuid.UUID
    period: str = Field(description="The period's name.")
    team_id: uuid.UUID | None
    team: str | None = Field(description="The owning team's key; null at company level.")
    parent_id: uuid.UUID | None
    progress: float | None = Field(
        description="Mean progress of the key results; null with no key results."
    )
    key_results: int = Field(description="How many key results the objective has.")
    created_at: datetime
    updated_at: datetime
