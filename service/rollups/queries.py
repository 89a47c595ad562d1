"""The aggregate queries behind roll-ups (DESIGN section 3): effort by category and team, and
its split across key results, each summed from the monthly cells for whole months and from
the derived columns of live leaves for the rest."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import AnyPrepared, Prepared, among_parameter, fetch_rows
from service.models import Link, WorkItem
from service.models.base import UTCDateTime, table_of
from service.models.portfolio import NO_TEAM
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


class Shape(NamedTuple):
    """What a scope's statements look like. Scopes of one shape share their statements, each
    built once (building them cost more than PostgreSQL took to run them), and differ only in
    their parameters (``parameters``)."""

    dialect: str
    basis: Basis
    teams: bool  # only the leaves of the scope's teams
    months: bool  # on count and points: whole months done, from the cells
    edges: int  # the windows around them, from the leaves
    open_months: bool  # open leaves of months before the last, from the cells
    open_edge: bool  # open leaves of the last month, from the leaves

    @classmethod
    def of(cls, scope: Scope, dialect: str) -> Shape:
        teams = scope.team_ids is not None
        if scope.basis == "days":
            return cls(dialect, scope.basis, teams, False, 0, False, False)
        plan = cells.Plan.of(scope.window, scope.include_open)
        return cls(
            dialect, scope.basis, teams, plan.months is not None, len(plan.edges),
            plan.open_months_before is not None, plan.open_edge is not None,
        )  # fmt: skip

    @property
    def reads_cells(self) -> bool:
        return self.months or self.open_months

    @property
    def reads_leaves(self) -> bool:
        return self.basis == "days" or self.edges > 0 or self.open_edge


def parameters(scope: Scope) -> dict[str, Any]:
    """The values of the parameters of a scope's statements."""
    found: dict[str, Any] = {"start": scope.window.start_at, "end": scope.window.end_at}
    # The leaves and the roll-up cells are filtered to the scope's teams, if it has them;
    # the source cells hold rows for each team and, under NO_TEAM, for the whole portfolio.
    teams = None if scope.team_ids is None else list(scope.team_ids)
    if teams is not None:
        found["teams"] = teams
    found["cell_teams"] = [NO_TEAM] if teams is None else teams
    if scope.basis != "days":
        plan = cells.Plan.of(scope.window, scope.include_open)
        found |= plan.parameters()
        for n, edge in enumerate(plan.edges):
            found[f"done_{n}_start"], found[f"done_{n}_end"] = edge.start_at, edge.end_at
        if plan.open_edge is not None:
            found["open_start"], found["open_end"] = plan.open_edge.start_at, plan.open_edge.end_at
    return found


def _at(name: str) -> Any:
    return sa.bindparam(name, type_=UTCDateTime())


def _days(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.extract("epoch", end - start) / 86400.0
    return sa.func.julianday(end) - sa.func.julianday(start)


def _greatest(a: Any, b: Any, dialect: str) -> Any:
    return sa.func.greatest(a, b) if dialect == "postgresql" else sa.func.max(a, b)


def _least(a: Any, b: Any, dialect: str) -> Any:
    return sa.func.least(a, b) if dialect == "postgresql" else sa.func.min(a, b)


def _within(column: Any, name: str) -> list[Any]:
    return [column >= _at(f"{name}_start"), column < _at(f"{name}_end")]


def _unestimated(shape: Shape) -> Any:
    """1 for a leaf without an estimate, on points; on other bases no leaf is unestimated."""
    if shape.basis == "points":
        return sa.case((col(WorkItem.estimate).is_(None), 1), else_=0)
    return sa.literal(0)


def measure(shape: Shape) -> list[tuple[Any, list[Any]]]:
    """The effort of one leaf, and the conditions a leaf meets to count (items 2 and 3), for
    each part of the leaves in scope: on count and points, the leaves done in each edge of the
    plan and, if it has one, the leaves still open created in its open edge; on days, the
    scope's whole window. Parts are apart so that each reads one range of an index."""
    start, end = _at("start"), _at("end")
    base: list[Any] = [col(WorkItem.is_leaf), col(WorkItem.deleted_at).is_(None)]
    if shape.teams:
        base.append(among_parameter(col(WorkItem.team_id), "teams", shape.dialect))
    if shape.basis == "days":
        # Days of [started_at or created_at, resolved_at or window end) inside the window,
        # whatever the status: canceled work took time too.
        began = sa.func.coalesce(WorkItem.started_at, WorkItem.created_at)
        ended = sa.func.coalesce(WorkItem.resolved_at, end)
        dialect = shape.dialect
        effort = _days(_greatest(began, start, dialect), _least(ended, end, dialect), dialect)
        return [(effort, [*base, began < end, ended > start, began < ended])]
    each = sa.func.coalesce(WorkItem.estimate, 0.0) if shape.basis == "points" else sa.literal(1.0)
    done = col(WorkItem.status_category) == "done"
    parts = [
        (each, [*base, done, *_within(col(WorkItem.resolved_at), f"done_{n}")])
        for n in range(shape.edges)
    ]
    if shape.open_edge:
        still_open = col(WorkItem.status_category).in_(OPEN)
        parts.append((each, [*base, still_open, *_within(col(WorkItem.created_at), "open")]))
    return parts


class CategoryRow(NamedTuple):
    category: str | None  # None: the configured default
    team_id: uuid.UUID | None
    items: int
    effort: float
    unestimated: int

    @classmethod
    def of_leaves(
        cls, category: str | None, team_id: uuid.UUID | None, items: Any, total: Any, missing: Any
    ) -> CategoryRow:
        """A row of the leaves' sums, whose total and missing count are NULL over no rows."""
        return cls(category, team_id, int(items), float(total or 0.0), int(missing or 0))


async def aggregate(session: AsyncSession, scope: Scope) -> list[CategoryRow]:
    """The scope's effort by category and team. On count and points the whole months of the
    window come from the monthly cells (service.rollups.cells) and only the days around them
    from the leaves; on days, everything comes from the leaves."""
    shape = Shape.of(scope, session.get_bind().dialect.name)
    params = parameters(scope)
    found = []
    if shape.reads_cells:
        stmt = cells.categories_statement(
            shape.dialect, months=shape.months, open_months=shape.open_months,
            points=shape.basis == "points", teams=shape.teams,
        )  # fmt: skip
        rows = cells.categories(await fetch_rows(session, stmt, params))
        found += [CategoryRow(*row) for row in rows]
    if shape.reads_leaves:
        leaves = await fetch_rows(session, _leaf_categories(shape), params)
        found += [CategoryRow.of_leaves(*row) for row in leaves]
    return found


def _from_leaves_alone(window: Window, basis: Basis, include_open: bool) -> bool:
    """Whether the window's roll-up reads only the leaves done in it: no whole month (cells)
    and no open leaves; so on count and points, any window shorter than a month."""
    if basis == "days" or include_open:
        return False
    plan = cells.Plan.of(window, include_open)
    return plan.months is None and plan.edges == (window,)


async def aggregate_each(
    session: AsyncSession,
    windows: Sequence[Window],
    basis: Basis,
    include_open: bool,
    team_ids: Collection[uuid.UUID] | None,
) -> list[list[CategoryRow]]:
    """``aggregate`` of each of ``windows``, which follow one another without gaps (a
    trend's). When each reads only the leaves done in it, as a quarter's weeks do, one
    statement reads them all, each leaf put in the window its resolution falls in; a week
    at a time cost a statement each, most of a trend's time."""
    if len(windows) < 2 or not all(_from_leaves_alone(w, basis, include_open) for w in windows):
        return [
            await aggregate(session, Scope(window, basis, include_open, team_ids))
            for window in windows
        ]
    # The leaves done in the windows' whole span, as for one window that reads only leaves.
    dialect = session.get_bind().dialect.name
    shape = Shape(dialect, basis, team_ids is not None, False, 1, False, False)
    params: dict[str, Any] = {
        "done_0_start": windows[0].start_at,
        "done_0_end": windows[-1].end_at,
        **{f"bound_{n}": window.end_at for n, window in enumerate(windows[:-1])},
    }
    if team_ids is not None:
        params["teams"] = list(team_ids)
    found: list[list[CategoryRow]] = [[] for _ in windows]
    for n, *sums in await fetch_rows(
        session, _windowed_leaf_categories(shape, len(windows)), params
    ):
        found[n].append(CategoryRow.of_leaves(*sums))
    return found


@lru_cache(maxsize=64)
def _windowed_leaf_categories(shape: Shape, windows: int) -> AnyPrepared:
    """The leaves done in the scope's window (one edge, as ``_from_leaves_alone`` asks), by
    the window of ``windows`` their resolution falls in, category and team; window ``n`` ends
    at parameter ``bound_n``, the last at the scope's end."""
    [(effort, conditions)] = measure(shape)
    resolved = col(WorkItem.resolved_at)
    slot = sa.case(
        *((resolved < _at(f"bound_{n}"), sa.literal_column(str(n))) for n in range(windows - 1)),
        else_=sa.literal_column(str(windows - 1)),
    ).label("slot")
    unestimated = _unestimated(shape)
    return Prepared(
        sa.select(
            slot,
            col(WorkItem.category),
            col(WorkItem.team_id),
            sa.func.count(),
            sa.func.sum(effort),
            sa.func.sum(unestimated),
        )
        .where(*conditions)
        .group_by(slot, col(WorkItem.category), col(WorkItem.team_id))
    )


@lru_cache(maxsize=64)
def key_result_sums(shape: Shape) -> Any:
    """A subquery of (key_result_id, leaves, effort): how much of the scope's effort each KR
    got, for KRs with leaves in scope. Every leaf under one link source shares that source's
    split, so what each source's leaves add up to (from the cells and the leaves, as for
    categories) is summed first, and only those sums are split across the sources' links:
    joining every cell row to the links instead cost three times as much."""
    parts: list[Any] = []
    if shape.reads_cells:
        parts.append(
            cells.source_rows(
                shape.dialect, months=shape.months, open_months=shape.open_months,
                points=shape.basis == "points",
            )
        )  # fmt: skip
    if shape.reads_leaves:
        groups = _leaf_groups(shape)
        parts.append(
            sa.select(groups.c.source, groups.c.leaves, groups.c.effort).where(
                groups.c.source.is_not(None)
            )
        )
    combined: Any = sa.union_all(*parts) if len(parts) > 1 else parts[0]
    rows = combined.subquery("parts")
    sources = (
        sa.select(
            rows.c.source,
            # An integer, so that the KRs' sums of it are too (a sum of sums is a numeric).
            sa.cast(sa.func.sum(rows.c.leaves), sa.Integer).label("leaves"),
            sa.func.sum(rows.c.effort).label("effort"),
        )
        .group_by(rows.c.source)
        .subquery("sources")
    )
    links = table_of(Link)
    leaves = sa.func.sum(sources.c.leaves)
    return (
        sa.select(
            links.c.key_result_id.label("key_result_id"),
            leaves.label("leaves"),
            sa.func.sum(sources.c.effort * links.c.share).label("effort"),
        )
        .select_from(sources)
        .join(links, links.c.work_item_id == sources.c.source)
        .group_by(links.c.key_result_id)
        .having(leaves != 0)
        .subquery("key_result_sums")
    )


def _leaf_groups(shape: Shape) -> Any:
    """The leaves in scope grouped by category, team and, for strategic leaves, the item
    whose links they inherit (their link source, see ``key_result_sums``)."""
    unestimated = _unestimated(shape)
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
        for effort, conditions in measure(shape)
    ]
    combined: Any = sa.union_all(*parts) if len(parts) > 1 else parts[0]
    return combined.cte("groups")


@lru_cache(maxsize=64)
def _leaf_categories(
    shape: Shape,
) -> Prepared[str | None, uuid.UUID | None, int, float | None, int | None]:
    groups = _leaf_groups(shape)
    return Prepared(
        sa.select(
            groups.c.category,
            groups.c.team_id,
            sa.func.sum(groups.c.leaves),
            sa.func.sum(groups.c.effort),
            sa.func.sum(groups.c.unestimated),
        ).group_by(groups.c.category, groups.c.team_id)
    )
