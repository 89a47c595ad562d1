"""SQL for objectives."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Objective, Period, Team
from service.pagination import PageParams


async def get(session: AsyncSession, objective_id: uuid.UUID) -> Objective | None:
    return await session.get(Objective, objective_id)


async def list_page(
    session: AsyncSession,
    page: PageParams,
    *,
    period_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    company_level: bool | None,
    parent_id: uuid.UUID | None,
) -> list[Objective]:
    stmt = select(Objective)
    if period_id is not None:
        stmt = stmt.where(col(Objective.period_id) == period_id)
    if team_id is not None:
        stmt = stmt.where(col(Objective.team_id) == team_id)
    if company_level is True:
        stmt = stmt.where(col(Objective.team_id).is_(None))
    elif company_level is False:
        stmt = stmt.where(col(Objective.team_id).is_not(None))
    if parent_id is not None:
        stmt = stmt.where(col(Objective.parent_id) == parent_id)
    result = await session.exec(page.apply(stmt, col(Objective.id)))
    return list(result.all())


async def labels(
    session: AsyncSession, period_ids: Collection[uuid.UUID], team_ids: Collection[uuid.UUID]
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """Period names and team keys by id, for rendering a page of objectives."""
    periods: dict[uuid.UUID, str] = {}
    teams: dict[uuid.UUID, str] = {}
    if period_ids:
        rows = await session.exec(
            select(Period.id, Period.name).where(col(Period.id).in_(period_ids))
        )
        periods = dict(rows.all())
    if team_ids:
        rows_t = await session.exec(select(Team.id, Team.key).where(col(Team.id).in_(team_ids)))
        teams = dict(rows_t.all())
    return periods, teams


async def has_aligned_children(session: AsyncSession, objective_id: uuid.UUID) -> bool:
    stmt = select(Objective.id).where(Objective.parent_id == objective_id).limit(1)
    return (await session.exec(stmt)).first() is not None
