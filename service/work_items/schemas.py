from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from connectors import Kind, StatusCategory
from service.schemas import ResponseModel
from service.settings import Category


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
    is_leaf: bool = Field(description="Leaves carry effort; parents' own estimates do not count.")
    category: Category = Field(description="What the item's effort counts as (see `why`).")


class ItemRef(ResponseModel):
    id: uuid.UUID
    key: str
    title: str


class RuleRef(ResponseModel):
    id: uuid.UUID
    name: str
    priority: int


class Why(ResponseModel):
    """Which item's links, or which rule matching which item, decided the category."""

    source: Literal["links", "rule", "default"]
    item: ItemRef | None = Field(description="The item whose links or rule match decided.")
    rule: RuleRef | None = Field(description="The classification rule that decided.")
    explanation: str


class EffectiveLinkOut(ResponseModel):
    key_result_id: uuid.UUID
    key_result: str = Field(description="The key result's title.")
    share: float = Field(description="The part of the item's effort that counts toward the KR.")


class WorkItemDetail(WorkItemOut):
    links: list[EffectiveLinkOut] = Field(description="Effective links (DESIGN section 3, item 4).")
    why: Why
