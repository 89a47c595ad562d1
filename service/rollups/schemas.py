from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from service.rollups.queries import Basis


class PeriodRef(BaseModel):
    id: uuid.UUID
    name: str
    start: date
    end: date


class TeamRef(BaseModel):
    id: uuid.UUID
    key: str
    name: str


class CategoryTotal(BaseModel):
    effort: float
    share: float = Field(description="effort / total; 0 when the total is 0.")
    items: int = Field(description="Leaves counted.")


class Categories(BaseModel):
    strategic: CategoryTotal
    improvement: CategoryTotal
    heartbeat: CategoryTotal


class KeyResultEffort(BaseModel):
    id: uuid.UUID
    title: str
    effort: float
    items: int
    progress: float


class ObjectiveEffort(BaseModel):
    id: uuid.UUID
    title: str
    period: str
    team: str | None
    effort: float
    share: float
    key_results: list[KeyResultEffort]


class TeamRollup(BaseModel):
    team: TeamRef
    total: float
    categories: Categories
    unestimated_items: int


class Rollup(BaseModel):
    period: PeriodRef
    team: TeamRef | None = Field(description="The scope; null for the whole portfolio.")
    basis: Basis
    include_open: bool
    total: float
    categories: Categories
    unestimated_items: int = Field(description="Leaves counted with no estimate (basis points).")
    objectives: list[ObjectiveEffort] = Field(
        description="Where the strategic effort went, largest first."
    )
    teams: list[TeamRollup] = Field(
        description="Each direct child team of the scope, over its subtree."
    )


class TrendPoint(BaseModel):
    start: date
    end: date = Field(description="Exclusive.")
    total: float
    categories: Categories
    unestimated_items: int


class Trend(BaseModel):
    period: PeriodRef
    team: TeamRef | None
    basis: Basis
    include_open: bool
    interval: str
    points: list[TrendPoint]
