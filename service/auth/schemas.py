from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, Field

from service.auth.scopes import Scope
from service.schemas import Name, RequestModel, ResponseModel


class TokenCreate(RequestModel):
    name: Name
    scope: Scope
    expires_at: AwareDatetime | None = None


class TokenOut(ResponseModel):
    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself. Shown this once; only a hash is kept.")
