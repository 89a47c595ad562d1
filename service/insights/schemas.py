from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.rollups.schemas import PeriodRef, TeamRef

FindingType = Literal[
    "too_many_objectives",
    "objective_not_aligned",
    "key_result_without_initiatives",
    "stale_key_result",
    "unlinked_epic",
    "strategic_share_below_target",
]


class Named(BaseModel):
    id: uuid.UUID
    title: str


class ItemRef(BaseModel):
    id: uuid.UUID
    key: str
    title: str
    url: str
    team: str | None


class Finding(BaseModel):
    type: FindingType
    message: str
    team: TeamRef | None = None
    objective: Named | None = None
    key_result: Named | None = None
    work_item: ItemRef | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Insights(BaseModel):
    period: PeriodRef
    team: TeamRef | None
    generated_at: datetime
    counts: dict[FindingType, int] = Field(description="Findings of each type, all of them.")
    findings: list[Finding] = Field(description="Up to `limit` findings of each type.")
