"""SQL for key results and check-ins."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.models import CheckIn, KeyResult, KeyResultEffort, Objective
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


# Which check-in of a key result is its latest.
NEWEST_FIRST = (col(CheckIn.created_at).desc(), col(CheckIn.id).desc())


def _newest_first(*columns: Any, among: Collection[uuid.UUID]) -> Any:
    """``columns`` of check-ins with each one's rank within its key result, newest first."""
    rank = sa.func.row_number().over(partition_by=col(CheckIn.key_result_id), order_by=NEWEST_FIRST)
    where = col(CheckIn.key_result_id).in_(among)
    return sa.select(*columns, rank.label("rank")).where(where).subquery()


def latest_value(key_result_id: Any) -> Any:
    """The value of the latest check-in of the key result ``key_result_id`` names (a column
    of an enclosing query), or NULL: for reading many KRs' values in their own query."""
    return (
        sa.select(col(CheckIn.value))
        .where(col(CheckIn.key_result_id) == key_result_id)
        .order_by(*NEWEST_FIRST)
        .limit(1)
        .scalar_subquery()
    )


def progress_inputs() -> tuple[Any, ...]:
    """What a KR's progress is computed from, as columns of a query that outer-joins its
    KeyResultEffort row to KeyResult: mode, basis, start, target, current value (the latest
    check-in's, or the KR's own) and the linked effort's four sums (NULL with no row). Read by
    queries over many KRs; ``service.progress_from`` computes the progress of such a row."""
    return (
        col(KeyResult.progress_mode), col(KeyResult.progress_basis),
        col(KeyResult.start_value), col(KeyResult.target_value),
        sa.func.coalesce(latest_value(col(KeyResult.id)), col(KeyResult.current_value)),
        col(KeyResultEffort.done_count), col(KeyResultEffort.all_count),
        col(KeyResultEffort.done_points), col(KeyResultEffort.all_points),
    )  # fmt: skip


async def latest_check_ins(
    session: AsyncSession, key_result_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CheckIn]:
    """The newest check-in of each key result, in one query."""
    if not key_result_ids:
        return {}
    ranked = _newest_first(CheckIn, among=key_result_ids)
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


NO_EFFORT = LinkedEffort(0.0, 0.0, 0.0, 0.0)


async def linked_efforts(
    session: AsyncSession, key_result_ids: Collection[uuid.UUID] | None
) -> dict[uuid.UUID, LinkedEffort]:
    """DESIGN section 3, item 8: done effort and all effort per KR (every KR, for None),
    whatever the period."""
    if key_result_ids is not None and not key_result_ids:
        return {}
    stmt = sa.select(
        col(KeyResultEffort.key_result_id), col(KeyResultEffort.done_count),
        col(KeyResultEffort.all_count), col(KeyResultEffort.done_points),
        col(KeyResultEffort.all_points),
    )  # fmt: skip
    if key_result_ids is not None:
        stmt = stmt.where(col(KeyResultEffort.key_result_id).in_(key_result_ids))
    return {row[0]: LinkedEffort(*row[1:]) for row in await fetch_rows(session, stmt)}
