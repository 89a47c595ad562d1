from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from service.schemas import RequestModel, ResponseModel

SyncMode = Literal["full", "incremental"]


class SyncRequest(RequestModel):
    mode: SyncMode = Field(
        default="incremental",
        description="`full` fetches everything and marks deleted what is gone; `incremental` "
        "fetches what changed since the last successful sync.",
    )


class SyncRunOut(ResponseModel):
    id: uuid.UUID
    connection_id: uuid.UUID
    mode: SyncMode
    status: Literal["queued", "running", "succeeded", "failed"]
    fetched: int
    created: int
    updated: int
    deleted: int
    api_calls: int
    pages: int
    attempts: int
    error: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
