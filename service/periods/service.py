"""Rules for periods: unique names, an end after the start, no orphaned objectives."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import flush_or_conflict
from service.errors import Conflict, InvalidInput
from service.models import Period
from service.pagination import Page, PageParams
from service.periods import repository
from service.periods.schemas import PeriodCreate, PeriodOut, PeriodUpdate
from service.refs import Resolver

resolver = Resolver("period", repository.get, repository.get_by_name)


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
