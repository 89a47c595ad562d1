"""The aggregate queries behind roll-ups (DESIGN section 3): effort by category and team, and
its split across key results, each summed from the monthly cells for whole months and from
the derived columns of live leaves for the rest."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.models import Link, WorkItem
from service.models.base import UTCDateTime
from service.rollups import cells
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


def _within(column: Any, window: Window) -> list[Any]:
    return [column >= _at(window.start_at), column < _at(window.end_at)]


def measure(
    scope: Scope, dialect: str, done_in: Sequence[Window], open_in: Window | None
) -> list[tuple[Any, list[Any]]]:
    """The effort of one leaf, and the conditions a leaf meets to count (items 2 and 3), for
    each part of the leaves in scope: on count and points, the leaves done in each window of
    ``done_in`` and, if given, the leaves still open created in ``open_in``; on days, the
    scope's whole window. Parts are apart so that each reads one range of an index."""
    start, end = _at(scope.window.start_at), _at(scope.window.end_at)
    base: list[Any] = [col(WorkItem.is_leaf), col(WorkItem.deleted_at).is_(None)]
    if scope.team_ids is not None:
        base.append(col(WorkItem.team_id).in_(list(scope.team_ids)))
    if scope.basis == "days":
        # Days of [started_at or created_at, resolved_at or window end) inside the window,
        # whatever the status: canceled work took time too.
        began = sa.func.coalesce(WorkItem.started_at, WorkItem.created_at)
        ended = sa.func.coalesce(WorkItem.resolved_at, end)
        effort = _days(_greatest(began, start, dialect), _least(ended, end, dialect), dialect)
        return [(effort, [*base, began < end, ended > start, began < ended])]
    each = sa.func.coalesce(WorkItem.estimate, 0.0) if scope.basis == "points" else sa.literal(1.0)
    done = col(WorkItem.status_category) == "done"
    parts = [(each, [*base, done, *_within(col(WorkItem.resolved_at), w)]) for w in done_in]
    if open_in is not None:
        still_open = col(WorkItem.status_category).in_(OPEN)
        parts.append((each, [*base, still_open, *_within(col(WorkItem.created_at), open_in)]))
    return parts


class CategoryRow(NamedTuple):
    category: str | None  # None: the configured default
    team_id: uuid.UUID | None
    items: int
    effort: float
    unestimated: int


async def aggregate(session: AsyncSession, scope: Scope) -> list[CategoryRow]:
    """The scope's effort by category and team. On count and points the whole months of the
    window come from the monthly cells (service.rollups.cells) and only the days around them
    from the leaves; on days, everything comes from the leaves."""
    dialect = session.get_bind().dialect.name
    if scope.basis == "days":
        return await _categories(session, _leaf_groups(scope, dialect, (), None))
    plan = cells.Plan.of(scope.window, scope.include_open)
    found = []
    if plan.reads_cells:
        rows = await cells.categories(
            session, plan, points=scope.basis == "points", team_ids=scope.team_ids
        )
        found += [CategoryRow(*row) for row in rows]
    if plan.edges or plan.open_edge:
        groups = _leaf_groups(scope, dialect, plan.edges, plan.open_edge)
        found += await _categories(session, groups)
    return found


def key_result_sums(scope: Scope, dialect: str) -> Any:
    """A subquery of (key_result_id, leaves, effort): how much of the scope's effort each KR
    got, from the cells and the leaves as for categories, for KRs with leaves in scope."""
    parts: list[Any] = []
    if scope.basis == "days":
        parts.append(_split_by_key_result(_leaf_groups(scope, dialect, (), None)))
    else:
        plan = cells.Plan.of(scope.window, scope.include_open)
        if plan.reads_cells:
            points = scope.basis == "points"
            parts.append(cells.key_result_rows(plan, points=points, team_ids=scope.team_ids))
        if plan.edges or plan.open_edge:
            groups = _leaf_groups(scope, dialect, plan.edges, plan.open_edge)
            parts.append(_split_by_key_result(groups))
    combined: Any = sa.union_all(*parts) if len(parts) > 1 else parts[0]
    rows = combined.subquery("parts")
    return (
        sa.select(
            rows.c.key_result_id,
            sa.func.sum(rows.c.leaves).label("leaves"),
            sa.func.sum(rows.c.effort).label("effort"),
        )
        .group_by(rows.c.key_result_id)
        .having(sa.func.sum(rows.c.leaves) != 0)
        .subquery("key_result_sums")
    )


def _leaf_groups(
    scope: Scope, dialect: str, done_in: Sequence[Window], open_in: Window | None
) -> Any:
    """The leaves in scope grouped by category, team and, for strategic leaves, the item
    whose links they inherit. Every leaf under one linked item shares that item's split, so
    splitting a group by its source's links equals joining every leaf to its effective links,
    at the cost of joining a few groups instead."""
    unestimated = (
        sa.case((col(WorkItem.estimate).is_(None), 1), else_=0)
        if scope.basis == "points"
        else sa.literal(0)
    )
    strategic = col(WorkItem.category) == "strategic"
    source = sa.case((strategic, col(WorkItem.decided_by_item_id)), else_=None)
    parts = [
        sa.select(
            col(WorkItem.category).label("category"),
            col(WorkItem.team_id).label("team_id"),
            source.label("source"),
            sa.func.count().label("leaves"),
            sa.func.sum(effort).label("effort"),
            sa.func.sum(unestimated).label("unestimated"),
        )
        .where(*conditions)
        .group_by(col(WorkItem.category), col(WorkItem.team_id), source)
        for effort, conditions in measure(scope, dialect, done_in, open_in)
    ]
    combined: Any = sa.union_all(*parts) if len(parts) > 1 else parts[0]
    return combined.cte("groups")


async def _categories(session: AsyncSession, groups: Any) -> list[CategoryRow]:
    stmt = sa.select(
        groups.c.category,
        groups.c.team_id,
        sa.func.sum(groups.c.leaves),
        sa.func.sum(groups.c.effort),
        sa.func.sum(groups.c.unestimated),
    ).group_by(groups.c.category, groups.c.team_id)
    return [
        CategoryRow(category, team_id, int(items), float(total or 0.0), int(missing or 0))
        for category, team_id, items, total, missing in await fetch_rows(session, stmt)
    ]


def _split_by_key_result(groups: Any) -> Any:
    # A source's effective shares are its own links' shares: links are few next to effective
    # links (one per leaf), so the groups join those.
    shares = sa.select(
        col(Link.work_item_id).label("source"),
        col(Link.key_result_id).label("key_result_id"),
        col(Link.share).label("share"),
    ).subquery("shares")
    return (
        sa.select(
            shares.c.key_result_id.label("key_result_id"),
            sa.func.sum(groups.c.leaves).label("leaves"),
            sa.func.sum(groups.c.effort * shares.c.share).label("effort"),
        )
        .select_from(groups)
        .join(shares, shares.c.source == groups.c.source)
        .group_by(shares.c.key_result_id)
    )
