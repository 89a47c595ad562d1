"""Rules for periods: unique names, an end after the start, no orphaned objectives."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from functools import partial

from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import flush_or_conflict
from service.errors import Conflict, InvalidInput, NotFound
from service.models import Period
from service.pagination import Page, PageParams
from service.periods import repository
from service.periods.schemas import PeriodCreate, PeriodOut, PeriodUpdate
from service.refs import lookup, one_of, resolve


async def find(session: AsyncSession, ref: str) -> Period | None:
    return await lookup(
        ref, by_id=partial(repository.get, session), by_key=partial(repository.get_by_name, session)
    )


async def get(*, session: AsyncSession, ref: str) -> Period:
    """The period named by ``ref`` (id or name) in a path: 404 when there is none."""
    period = await find(session, ref)
    if period is None:
        raise NotFound(f"no period {ref!r}")
    return period


async def resolve_reference(
    *, session: AsyncSession, period_id: uuid.UUID | None, name: str | None
) -> Period | None:
    """The period a request body names by ``period_id`` or ``period`` (id or name)."""
    return await resolve(
        one_of("period", period_id, name),
        what="period",
        loc=["body", "period"],
        find=partial(find, session),
    )


async def from_query(*, session: AsyncSession, ref: str | None) -> Period | None:
    """The period a query parameter names (id or name)."""
    return await resolve(ref, what="period", loc=["query", "period"], find=partial(find, session))


async def create(*, session: AsyncSession, data: PeriodCreate) -> PeriodOut:
    if await repository.get_by_name(session, data.name) is not None:
        raise Conflict(f"a period named {data.name!r} exists already")
    period = Period(name=data.name, start=data.start, end=data.end)
    session.add(period)
    await flush_or_conflict(session, f"a period named {data.name!r} exists already")
    return PeriodOut.model_validate(period)


async def update(*, session: AsyncSession, period: Period, data: PeriodUpdate) -> PeriodOut:
    changes = data.model_dump(exclude_unset=True)
    for field in ("name", "start", "end"):
        if field in changes and changes[field] is None:
            raise InvalidInput.at(field, f"{field} cannot be null")
    name = changes.get("name", period.name)
    if name != period.name and await repository.get_by_name(session, name) is not None:
        raise Conflict(f"a period named {name!r} exists already")
    start: date = changes.get("start", period.start)
    end: date = changes.get("end", period.end)
    if end <= start:
        raise InvalidInput.at("end", "a period must end after it starts")
    period.name, period.start, period.end = name, start, end
    period.updated_at = datetime.now(UTC)
    session.add(period)
    await flush_or_conflict(session, f"a period named {name!r} exists already")
    return PeriodOut.model_validate(period)


async def list_page(
    *, session: AsyncSession, page: PageParams, contains: date | None
) -> Page[PeriodOut]:
    rows = await repository.list_page(session, page, contains=contains)
    rows, next_cursor = page.split(rows, lambda period: period.id)
    return Page(items=[PeriodOut.model_validate(p) for p in rows], next_cursor=next_cursor)


async def delete(*, session: AsyncSession, period: Period) -> None:
    if await repository.has_objectives(session, period.id):
        raise Conflict(f"period {period.name!r} still has objectives; delete them first")
    await session.delete(period)
    await session.flush()
