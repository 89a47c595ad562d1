from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, FiniteFloat

from service.rules.matching import Match
from service.schemas import RequestModel, ResponseModel

RuleName = Annotated[str, Field(max_length=200)]
Weight = Annotated[FiniteFloat, Field(gt=0, le=1_000_000)]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Category = Literal["improvement", "heartbeat"]


class LinkRuleCreate(RequestModel):
    name: RuleName = ""
    match: Match
    key_result_id: uuid.UUID
    weight: Weight = 1.0


class LinkRuleUpdate(RequestModel):
    name: RuleName | None = None
    match: Match | None = None
    key_result_id: uuid.UUID | None = None
    weight: Weight | None = None


class LinkRuleOut(ResponseModel):
    id: uuid.UUID
    name: str
    match: dict[str, list[str]]
    key_result_id: uuid.UUID
    weight: float
    created_at: datetime
    updated_at: datetime


class ClassificationRuleCreate(RequestModel):
    name: RuleName = ""
    match: Match
    priority: Priority = Field(default=0, description="Higher first; among equals, older first.")
    category: Category


class ClassificationRuleUpdate(RequestModel):
    name: RuleName | None = None
    match: Match | None = None
    priority: Priority | None = None
    category: Category | None = None


class ClassificationRuleOut(ResponseModel):
    id: uuid.UUID
    name: str
    match: dict[str, list[str]]
    priority: int
    category: Category
    created_at: datetime
    updated_at: datetime
