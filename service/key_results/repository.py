"""SQL for key results and check-ins."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.models import CheckIn, EffectiveLink, KeyResult, Objective, WorkItem
from service.pagination import PageParams


async def get(session: AsyncSession, key_result_id: uuid.UUID) -> KeyResult | None:
    return await session.get(KeyResult, key_result_id)


async def list_page(
    session: AsyncSession,
    page: PageParams,
    *,
    objective_id: uuid.UUID | None,
    period_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    progress_mode: str | None,
) -> list[KeyResult]:
    stmt = select(KeyResult)
    if period_id is not None or team_id is not None:
        stmt = stmt.join(Objective, col(Objective.id) == KeyResult.objective_id)
        if period_id is not None:
            stmt = stmt.where(col(Objective.period_id) == period_id)
        if team_id is not None:
            stmt = stmt.where(col(Objective.team_id) == team_id)
    if objective_id is not None:
        stmt = stmt.where(col(KeyResult.objective_id) == objective_id)
    if progress_mode is not None:
        stmt = stmt.where(col(KeyResult.progress_mode) == progress_mode)
    result = await session.exec(page.apply(stmt, col(KeyResult.id)))
    return list(result.all())


async def of_objectives(
    session: AsyncSession, objective_ids: Collection[uuid.UUID]
) -> list[KeyResult]:
    if not objective_ids:
        return []
    stmt = select(KeyResult).where(col(KeyResult.objective_id).in_(objective_ids))
    return list((await session.exec(stmt.order_by(col(KeyResult.id)))).all())


async def latest_check_ins(
    session: AsyncSession, key_result_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CheckIn]:
    """The newest check-in of each key result, in one query."""
    if not key_result_ids:
        return {}
    ranked = (
        sa.select(
            CheckIn,
            sa.func.row_number()
            .over(
                partition_by=col(CheckIn.key_result_id),
                order_by=(col(CheckIn.created_at).desc(), col(CheckIn.id).desc()),
            )
            .label("rank"),
        )
        .where(col(CheckIn.key_result_id).in_(key_result_ids))
        .subquery()
    )
    latest = sa.orm.aliased(CheckIn, ranked)
    result = await session.exec(select(latest).where(ranked.c.rank == 1))
    return {row.key_result_id: row for row in result}


async def list_check_ins(
    session: AsyncSession, page: PageParams, key_result_id: uuid.UUID
) -> list[CheckIn]:
    stmt = select(CheckIn).where(CheckIn.key_result_id == key_result_id)
    result = await session.exec(page.apply(stmt, col(CheckIn.id), descending=True))
    return list(result.all())


class LinkedEffort(NamedTuple):
    """Effort of the live, non-canceled leaves counting toward a KR, weighted by share."""

    done_count: float
    all_count: float
    done_points: float
    all_points: float

    def by(self, basis: str) -> tuple[float, float]:
        if basis == "points":
            return self.done_points, self.all_points
        return self.done_count, self.all_count


NO_EFFORT = LinkedEffort(0.0, 0.0, 0.0, 0.0)


async def linked_efforts(
    session: AsyncSession, key_result_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, LinkedEffort]:
    """DESIGN section 3, item 8: done effort and all effort per KR, whatever the period."""
    if not key_result_ids:
        return {}
    done = col(WorkItem.status_category) == "done"
    share = col(EffectiveLink.share)
    points = share * sa.func.coalesce(WorkItem.estimate, 0.0)
    stmt = (
        sa.select(
            col(EffectiveLink.key_result_id),
            sa.func.sum(sa.case((done, share), else_=0.0)),
            sa.func.sum(share),
            sa.func.sum(sa.case((done, points), else_=0.0)),
            sa.func.sum(points),
        )
        .join(WorkItem, col(WorkItem.id) == EffectiveLink.work_item_id)
        .where(
            col(EffectiveLink.key_result_id).in_(key_result_ids),
            col(WorkItem.is_leaf),
            col(WorkItem.deleted_at).is_(None),
            col(WorkItem.status_category) != "canceled",
        )
        .group_by(col(EffectiveLink.key_result_id))
    )
    rows = await fetch_rows(session, stmt)
    return {kr: LinkedEffort(*(float(v or 0.0) for v in values)) for kr, *values in rows}
