from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, FiniteFloat

from service.schemas import RequestModel, ResponseModel

Weight = Annotated[FiniteFloat, Field(gt=0, le=1_000_000)]
Origin = Literal["manual", "rule"]


class LinkCreate(RequestModel):
    key_result_id: uuid.UUID
    work_item_id: uuid.UUID | None = None
    work_item_key: str | None = Field(default=None, min_length=1, max_length=200)
    weight: Weight = Field(
        default=1.0, description="The item's effort is split across its KRs by weight."
    )


class LinkOut(ResponseModel):
    id: uuid.UUID
    key_result_id: uuid.UUID
    work_item_id: uuid.UUID
    work_item_key: str
    weight: float
    origin: Origin
    link_rule_id: uuid.UUID | None = Field(description="The rule that made the link, if one did.")
    created_at: datetime
