"""Natural keys: related things are named by id or by key, in bodies, paths and queries."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.errors import InvalidInput

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


def one_of(field: str, id_value: uuid.UUID | None, key_value: str | None) -> uuid.UUID | str | None:
    """The id or the key given for ``field`` (``field_id`` / ``field``), refusing both at once."""
    if id_value is not None and key_value is not None:
        raise InvalidInput.at(field, f"give {field}_id or {field}, not both")
    return id_value if id_value is not None else key_value


async def lookup(
    ref: str,
    *,
    by_id: Callable[[uuid.UUID], Awaitable[T | None]],
    by_key: Callable[[str], Awaitable[T | None]],
) -> T | None:
    """The thing ``ref`` names, whether it is an id or a key."""
    ref_id = as_uuid(ref)
    return await by_id(ref_id) if ref_id is not None else await by_key(ref)


async def resolve(
    ref: uuid.UUID | str | None,
    *,
    what: str,
    loc: list[str],
    find: Callable[[str], Awaitable[T | None]],
) -> T | None:
    """The thing a request names at ``loc`` (a body field or query parameter): 422 if unknown."""
    if ref is None:
        return None
    found = await find(str(ref))
    if found is None:
        raise InvalidInput(
            f"no {what} {str(ref)!r}", errors=[{"loc": loc, "msg": f"no such {what}"}]
        )
    return found
