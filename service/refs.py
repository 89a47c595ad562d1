"""Natural keys: related things are named by id or by key, in bodies, paths and queries."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from service.errors import InvalidInput, NotFound

T = TypeVar("T")


def as_uuid(ref: str) -> uuid.UUID | None:
    """The ref as an id when it is one; keys are never shaped like UUIDs, so this is exact."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def not_uuid_shaped(value: str) -> str:
    """Validator for keys and names: one shaped like a UUID would be ambiguous with an id."""
    if as_uuid(value) is not None:
        raise ValueError("must not look like a UUID, which would read as an id")
    return value


@dataclass(frozen=True)
class Resolver(Generic[T]):
    """Finds one kind of thing by id or natural key, failing as each place in a request calls
    for: 404 for the resource a path names, 422 for a reference in a body or a query."""

    what: str
    by_id: Callable[[AsyncSession, uuid.UUID], Awaitable[T | None]]
    by_key: Callable[[AsyncSession, str], Awaitable[T | None]]

    async def find(self, session: AsyncSession, ref: str) -> T | None:
        ref_id = as_uuid(ref)
        return await (self.by_id(session, ref_id) if ref_id else self.by_key(session, ref))

    async def get(self, session: AsyncSession, ref: str) -> T:
        """The thing a path names."""
        found = await self.find(session, ref)
        if found is None:
            raise NotFound(f"no {self.what} {ref!r}")
        return found

    async def from_body(
        self, session: AsyncSession, field: str, id_value: uuid.UUID | None, key: str | None
    ) -> T | None:
        """The thing a body names by ``<field>_id`` or ``<field>``; both at once is refused."""
        if id_value is not None and key is not None:
            raise InvalidInput.at(field, f"give {field}_id or {field}, not both")
        ref = str(id_value) if id_value is not None else key
        return await self._reference(session, ref, ["body", field])

    async def from_query(self, session: AsyncSession, ref: str | None, param: str) -> T | None:
        """The thing a query parameter names."""
        return await self._reference(session, ref, ["query", param])

    async def _reference(self, session: AsyncSession, ref: str | None, loc: list[str]) -> T | None:
        if ref is None:
            return None
        found = await self.find(session, ref)
        if found is None:
            detail = f"no {self.what} {ref!r}"
            raise InvalidInput(detail, errors=[{"loc": loc, "msg": f"no such {self.what}"}])
        return found
