"""Keyset pagination over time-ordered ids: ``{"items": [...], "next_cursor": ...}``."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Query
from pydantic import BaseModel

from service.errors import InvalidInput

T = TypeVar("T")
S = TypeVar("S")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput(
            "cursor is not one this API issued",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: uuid.UUID | None

    def apply(self, stmt: S, id_column: Any, *, descending: bool = False) -> S:
        """Restrict ``stmt`` to this page, fetching one extra row to learn if more follow."""
        query: Any = stmt
        if self.after is not None:
            query = query.where(id_column < self.after if descending else id_column > self.after)
        order = id_column.desc() if descending else id_column.asc()
        paged: S = query.order_by(order).limit(self.limit + 1)
        return paged

    @staticmethod
    def apply_later(stmt: S, id_column: Any, *, after: bool) -> S:
        """``apply`` for a statement built once and run for many pages: the cursor (when
        the pages have one) and the limit are parameters, valued by ``parameters``."""
        query: Any = stmt
        if after:
            query = query.where(id_column > sa.bindparam("after"))
        paged: S = query.order_by(id_column.asc()).limit(sa.bindparam("limit"))
        return paged

    def parameters(self) -> dict[str, Any]:
        """The values of ``apply_later``'s parameters for this page."""
        values: dict[str, Any] = {"limit": self.limit + 1}
        if self.after is not None:
            values["after"] = self.after
        return values

    def split(self, rows: list[T], last_id: Any) -> tuple[list[T], str | None]:
        """The page's rows and the cursor to the next page, from ``apply``'s result."""
        if len(rows) <= self.limit:
            return rows, None
        rows = rows[: self.limit]
        return rows, encode_cursor(last_id(rows[-1]))


async def _page_params(  # a coroutine: FastAPI runs plain functions in its thread pool
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.", max_length=64)
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(_page_params)]
