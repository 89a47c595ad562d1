"""SQL for periods."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Objective, Period
from service.pagination import PageParams


async def get(session: AsyncSession, period_id: uuid.UUID) -> Period | None:
    return await session.get(Period, period_id)


# Built once: every roll-up and trend names its period, and building cost more than running.
_BY_NAME = select(Period).where(Period.name == sa.bindparam("name"))


async def get_by_name(session: AsyncSession, name: str) -> Period | None:
    result = await session.exec(_BY_NAME, params={"name": name})
    return result.first()


async def list_page(
    session: AsyncSession, page: PageParams, *, contains: date | None
) -> list[Period]:
    stmt = select(Period)
    if contains is not None:
        stmt = stmt.where(col(Period.start) <= contains, col(Period.end) > contains)
    result = await session.exec(page.apply(stmt, col(Period.id)))
    return list(result.all())


async def has_objectives(session: AsyncSession, period_id: uuid.UUID) -> bool:
    stmt = select(Objective.id).where(Objective.period_id == period_id).limit(1)
    return (await session.exec(stmt)).first() is not None
