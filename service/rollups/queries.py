"""The aggregate queries behind roll-ups: one over the derived columns of live leaves, and
one more over their effective links for the split across key results (DESIGN section 3)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.models import EffectiveLink, WorkItem
from service.models.base import UTCDateTime
from service.rollups.windows import Window

OPEN = ("todo", "in_progress")


Basis = Literal["count", "points", "days"]


class Scope(NamedTuple):
    """Which leaves a roll-up reads: a window, a basis, and optionally a set of teams."""

    window: Window
    basis: Basis
    include_open: bool
    team_ids: Collection[uuid.UUID] | None  # None: the whole portfolio, teamless leaves too


def _at(value: Any) -> Any:
    return sa.literal(value, UTCDateTime())


def _days(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.extract("epoch", end - start) / 86400.0
    return sa.func.julianday(end) - sa.func.julianday(start)


def _greatest(a: Any, b: Any, dialect: str) -> Any:
    return sa.func.greatest(a, b) if dialect == "postgresql" else sa.func.max(a, b)


def _least(a: Any, b: Any, dialect: str) -> Any:
    return sa.func.least(a, b) if dialect == "postgresql" else sa.func.min(a, b)


def measure(scope: Scope, dialect: str) -> tuple[Any, list[Any]]:
    """The effort of one leaf, and the conditions a leaf meets to count (items 2 and 3)."""
    start, end = _at(scope.window.start_at), _at(scope.window.end_at)
    conditions: list[Any] = [col(WorkItem.is_leaf), col(WorkItem.deleted_at).is_(None)]
    if scope.team_ids is not None:
        conditions.append(col(WorkItem.team_id).in_(list(scope.team_ids)))
    if scope.basis == "days":
        # Days of [started_at or created_at, resolved_at or window end) inside the window,
        # whatever the status: canceled work took time too.
        began = sa.func.coalesce(WorkItem.started_at, WorkItem.created_at)
        ended = sa.func.coalesce(WorkItem.resolved_at, end)
        effort = _days(_greatest(began, start, dialect), _least(ended, end, dialect), dialect)
        conditions += [began < end, ended > start, began < ended]
        return effort, conditions
    done = sa.and_(
        col(WorkItem.status_category) == "done",
        col(WorkItem.resolved_at) >= start,
        col(WorkItem.resolved_at) < end,
    )
    if scope.include_open:
        still_open = sa.and_(
            col(WorkItem.status_category).in_(OPEN), col(WorkItem.created_at) < end
        )
        conditions.append(sa.or_(done, still_open))
    else:
        conditions.append(done)
    if scope.basis == "points":
        return sa.func.coalesce(WorkItem.estimate, 0.0), conditions
    return sa.literal(1.0), conditions


class CategoryRow(NamedTuple):
    category: str | None  # None: the configured default
    team_id: uuid.UUID | None
    items: int
    effort: float
    unestimated: int


async def by_category_and_team(session: AsyncSession, scope: Scope) -> list[CategoryRow]:
    dialect = session.get_bind().dialect.name
    effort, conditions = measure(scope, dialect)
    unestimated = (
        sa.func.sum(sa.case((col(WorkItem.estimate).is_(None), 1), else_=0))
        if scope.basis == "points"
        else sa.literal(0)
    )
    stmt = (
        sa.select(
            col(WorkItem.category),
            col(WorkItem.team_id),
            sa.func.count(),
            sa.func.sum(effort),
            unestimated,
        )
        .where(*conditions)
        .group_by(col(WorkItem.category), col(WorkItem.team_id))
    )
    rows = await fetch_rows(session, stmt)
    return [
        CategoryRow(category, team_id, int(items), float(total or 0.0), int(missing or 0))
        for category, team_id, items, total, missing in rows
    ]


class KeyResultRow(NamedTuple):
    key_result_id: uuid.UUID
    items: int
    effort: float


async def by_key_result(session: AsyncSession, scope: Scope) -> Sequence[KeyResultRow]:
    """Each KR's part of the strategic effort: every leaf's effort times the KR's share."""
    dialect = session.get_bind().dialect.name
    effort, conditions = measure(scope, dialect)
    stmt = (
        sa.select(
            col(EffectiveLink.key_result_id),
            sa.func.count(),
            sa.func.sum(effort * col(EffectiveLink.share)),
        )
        .select_from(WorkItem)
        .join(EffectiveLink, col(EffectiveLink.work_item_id) == WorkItem.id)
        .where(*conditions)
        .group_by(col(EffectiveLink.key_result_id))
    )
    rows = await fetch_rows(session, stmt)
    return [KeyResultRow(kr, int(items), float(total or 0.0)) for kr, items, total in rows]
