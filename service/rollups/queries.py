"""The aggregate queries behind roll-ups: one over the derived columns of live leaves, and
one more over their effective links for the split across key results (DESIGN section 3)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

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


def _within(column: Any, window: Window) -> Any:
    return sa.and_(column >= _at(window.start_at), column < _at(window.end_at))


def measure(
    scope: Scope, dialect: str, done_in: Sequence[Window], open_in: Window | None
) -> tuple[Any, list[Any]]:
    """The effort of one leaf, and the conditions a leaf meets to count (items 2 and 3): on
    count and points, leaves done in ``done_in`` and, if given, leaves still open created in
    ``open_in``; on days, the scope's whole window."""
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
    done = col(WorkItem.status_category) == "done"
    counts = [sa.and_(done, _within(col(WorkItem.resolved_at), window)) for window in done_in]
    if open_in is not None:
        still_open = col(WorkItem.status_category).in_(OPEN)
        counts.append(sa.and_(still_open, _within(col(WorkItem.created_at), open_in)))
    conditions.append(sa.or_(*counts))
    if scope.basis == "points":
        return sa.func.coalesce(WorkItem.estimate, 0.0), conditions
    return sa.literal(1.0), conditions


class CategoryRow(NamedTuple):
    category: str | None  # None: the configured default
    team_id: uuid.UUID | None
    items: int
    effort: float
    unestimated: int


class KeyResultRow(NamedTuple):
    key_result_id: uuid.UUID
    items: int
    effort: float


async def aggregate(
    session: AsyncSession, scope: Scope, *, by_key_result: bool = True
) -> tuple[list[CategoryRow], list[KeyResultRow]]:
    """The scope's effort by category and team, and by key result. On count and points the
    whole months of the window come from the monthly cells (service.rollups.cells) and only
    the days around them from the leaves; on days, everything comes from the leaves."""
    if scope.basis == "days":
        return await _from_leaves(session, scope, (), None, by_key_result)
    plan = cells.Plan.of(scope.window, scope.include_open)
    categories: list[CategoryRow] = []
    key_results: dict[uuid.UUID, KeyResultRow] = {}
    if plan.reads_cells:
        found = await cells.read(
            session, plan, points=scope.basis == "points", team_ids=scope.team_ids,
            by_key_result=by_key_result,
        )  # fmt: skip
        categories += [CategoryRow(*row) for row in found.categories]
        key_results = {kr: KeyResultRow(kr, n, effort) for kr, n, effort in found.key_results}
    if plan.edges or plan.open_edge:
        more, more_krs = await _from_leaves(
            session, scope, plan.edges, plan.open_edge, by_key_result
        )
        categories += more
        for row in more_krs:
            before = key_results.get(row.key_result_id)
            key_results[row.key_result_id] = (
                row if before is None
                else KeyResultRow(row.key_result_id, before.items + row.items,
                                  before.effort + row.effort)
            )  # fmt: skip
    return categories, list(key_results.values())


async def _from_leaves(
    session: AsyncSession,
    scope: Scope,
    done_in: Sequence[Window],
    open_in: Window | None,
    by_key_result: bool,
) -> tuple[list[CategoryRow], list[KeyResultRow]]:
    """One scan of the leaves in scope, grouped by category, team and, for strategic leaves,
    the item whose links they inherit; each such group's effort is then split by that item's
    link shares. Every leaf under one linked item shares its split, so this equals joining
    every leaf to its effective links, at the cost of joining a few groups instead."""
    dialect = session.get_bind().dialect.name
    effort, conditions = measure(scope, dialect, done_in, open_in)
    unestimated = (
        sa.case((col(WorkItem.estimate).is_(None), 1), else_=0)
        if scope.basis == "points"
        else sa.literal(0)
    )
    strategic = col(WorkItem.category) == "strategic"
    source = sa.case((strategic, col(WorkItem.decided_by_item_id)), else_=None)
    groups = (
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
        .cte("groups")
    )
    by_category = sa.select(
        sa.literal("c").label("part"),
        groups.c.category,
        groups.c.team_id,
        sa.type_coerce(sa.null(), sa.Uuid()).label("key_result_id"),
        sa.func.sum(groups.c.leaves),
        sa.func.sum(groups.c.effort),
        sa.func.sum(groups.c.unestimated),
    ).group_by(groups.c.category, groups.c.team_id)
    # A source's effective shares are its own links' shares: links are few next to effective
    # links (one per leaf), so the groups join those.
    shares = sa.select(
        col(Link.work_item_id).label("source"),
        col(Link.key_result_id).label("key_result_id"),
        col(Link.share).label("share"),
    ).subquery("shares")
    by_kr = (
        sa.select(
            sa.literal("k"),
            sa.null(),
            sa.null(),
            shares.c.key_result_id,
            sa.func.sum(groups.c.leaves),
            sa.func.sum(groups.c.effort * shares.c.share),
            sa.literal(0),
        )
        .select_from(groups)
        .join(shares, shares.c.source == groups.c.source)
        .group_by(shares.c.key_result_id)
    )
    stmt = sa.union_all(by_category, by_kr) if by_key_result else by_category
    await session.flush()
    rows = (await (await session.connection()).execute(stmt)).all()
    categories, key_results = [], []
    for part, category, team_id, kr, items, total, missing in rows:
        if part == "c":
            categories.append(
                CategoryRow(category, team_id, int(items), float(total or 0.0), int(missing or 0))
            )
        else:
            key_results.append(KeyResultRow(kr, int(items), float(total or 0.0)))
    return categories, key_results
