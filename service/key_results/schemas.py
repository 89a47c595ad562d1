from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, FiniteFloat, StringConstraints, model_validator

from service.schemas import TRIMMED, RequestModel, ResponseModel, Text, Title

Unit = Annotated[str, StringConstraints(max_length=32), TRIMMED]
Confidence = Annotated[FiniteFloat, Field(ge=0, le=1)]


ProgressMode = Literal["manual", "linked"]
ProgressBasis = Literal["count", "points"]


class KeyResultCreate(RequestModel):
    objective_id: uuid.UUID
    title: Title
    start_value: FiniteFloat = 0.0
    target_value: FiniteFloat
    current_value: FiniteFloat | None = Field(
        default=None, description="Defaults to `start_value`; check-ins supersede it."
    )
    unit: Unit = ""
    progress_mode: ProgressMode = "manual"
    progress_basis: ProgressBasis = Field(
        default="count", description="For `linked` progress: count items or points."
    )

    @model_validator(mode="after")
    def _target_differs(self) -> KeyResultCreate:
        if self.target_value == self.start_value:
            raise ValueError("target_value must differ from start_value")
        return self


class KeyResultUpdate(RequestModel):
    objective_id: uuid.UUID | None = None
    title: Title | None = None
    start_value: FiniteFloat | None = None
    target_value: FiniteFloat | None = None
    current_value: FiniteFloat | None = None
    unit: Unit | None = None
    progress_mode: ProgressMode | None = None
    progress_basis: ProgressBasis | None = None


class CheckInCreate(RequestModel):
    value: FiniteFloat
    confidence: Confidence | None = None
    note: Text = ""
    created_at: AwareDatetime | None = Field(
        default=None, description="When the reading was taken; now when absent. Not in the future."
    )


class CheckInOut(ResponseModel):
    id: uuid.UUID
    key_result_id: uuid.UUID
    value: float
    confidence: float | None
    note: str
    created_at: datetime


class KeyResultOut(ResponseModel):
    id: uuid.UUID
    objective_id: uuid.UUID
    title: str
    start_value: float
    target_value: float
    current_value: float
    unit: str
    progress_mode: ProgressMode
    progress_basis: ProgressBasis
    progress: float = Field(description="0..1; DESIGN section 3, item 8.")
    last_check_in: CheckInOut | None
    created_at: datetime
    updated_at: datetime
