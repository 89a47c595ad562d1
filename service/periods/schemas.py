from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from service.refs import not_uuid_shaped
from service.schemas import NOT_BLANK, Day, RequestModel, ResponseModel

PeriodName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    NOT_BLANK,
    AfterValidator(not_uuid_shaped),
]


class PeriodCreate(RequestModel):
    name: PeriodName = Field(examples=["2026-Q4"])
    start: Day = Field(description="First day of the period (inclusive).")
    end: Day = Field(description="Day after the period's last day (exclusive).")

    @model_validator(mode="after")
    def _ends_after_start(self) -> PeriodCreate:
        if self.end <= self.start:
            raise ValueError("a period must end after it starts")
        return self


class PeriodUpdate(RequestModel):
    name: PeriodName | None = None
    start: Day | None = None
    end: Day | None = None


class PeriodOut(ResponseModel):
    id: uuid.UUID
    name: str
    start: date
    end: date
    created_at: datetime
    updated_at: datetime
