"""Monthly roll-up cells (models RollupCell and SourceCell): reading them for the whole
months of a window, compacting them, and checking them against the leaves.

Triggers in the database keep the cells on every write (migrations 7c0e5b2a9d14 and
9a4c2e6f8b1d), so this module never writes a figure of its own, except when `rebuild`
repairs cells found wrong.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import AnyPrepared, Prepared, among_parameter, connection_of, fetch_rows
from service.models import RollupCell, SourceCell, WorkItem
from service.models.base import table_of
from service.models.portfolio import NO_TEAM
from service.rollups.windows import Window, next_month
from service.worker.enqueue import after_commit

# Each cell table with its key columns and its figures, in the order the code reads them.
TABLES: tuple[tuple[type[SQLModel], tuple[str, ...], tuple[str, ...]], ...] = (
    (RollupCell, ("month", "state", "team_id", "category"), ("leaves", "points", "unestimated")),
    (SourceCell, ("month", "state", "team_id", "source_id"), ("leaves", "points")),
)
# Compactions take turns, so that two never delete the same keys' rows in opposite orders.
COMPACT_LOCK = 0x6F6B725F63656C6C  # "okr_cell"
COMPACT_JOB = "compact_rollup_cells"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(day: date) -> date:
    """The first day of a month on or after ``day``."""
    return day if day.day == 1 else next_month(day)


@dataclass(frozen=True, slots=True)
class Plan:
    """Which parts of a count or points roll-up the cells answer, and which the leaves do."""

    months: Window | None  # whole months in the window: done leaves, from the cells
    edges: tuple[Window, ...]  # the days around them: done leaves, from the leaves
    open_months_before: date | None  # open leaves created in months before this: cells
    open_edge: Window | None  # open leaves created since then, before the end: leaves

    @classmethod
    def of(cls, window: Window, include_open: bool) -> Plan:
        first, last = next_month_start(window.start), month_start(window.end)
        if first < last:
            months: Window | None = Window(first, last)
            edges = tuple(
                w for w in (Window(window.start, first), Window(last, window.end))
                if w.start < w.end
            )  # fmt: skip
        else:
            months, edges = None, (window,)
        if not include_open:
            return cls(months, edges, None, None)
        open_edge = Window(last, window.end) if last < window.end else None
        return cls(months, edges, last, open_edge)

    @property
    def reads_cells(self) -> bool:
        return self.months is not None or self.open_months_before is not None

    def parameters(self) -> dict[str, Any]:
        """The values of the cell statements' parameters (``categories_statement``)."""
        found: dict[str, Any] = {}
        if self.months is not None:
            found |= {"months_start": self.months.start, "months_end": self.months.end}
        if self.open_months_before is not None:
            found["open_before"] = self.open_months_before
        return found


def _in_plan(table: Any, months: bool, open_months: bool) -> Any:
    parts = []
    if months:
        parts.append(
            sa.and_(
                table.c.state == "done",
                table.c.month >= sa.bindparam("months_start", type_=sa.Date()),
                table.c.month < sa.bindparam("months_end", type_=sa.Date()),
            )
        )
    if open_months:
        before = sa.bindparam("open_before", type_=sa.Date())
        parts.append(sa.and_(table.c.state == "open", table.c.month < before))
    return sa.or_(*parts)


@lru_cache(maxsize=64)
def categories_statement(
    dialect: str, *, months: bool, open_months: bool, points: bool, teams: bool
) -> AnyPrepared:
    """The cells' sums by category and team, for the parts of a plan they answer (whole
    months, open leaves of months before): (category or '' for the default, team or
    NO_TEAM, leaves, effort, unestimated). Built once per shape; the plan's values and the
    ``teams`` list are parameters (``Plan.parameters``)."""
    table = table_of(RollupCell)
    in_scope = [_in_plan(table, months, open_months)]
    if teams:
        in_scope.append(among_parameter(table.c.team_id, "teams", dialect))
    effort = sa.func.sum(table.c.points if points else table.c.leaves)
    unestimated = sa.func.sum(table.c.unestimated) if points else sa.literal(0)
    return Prepared(
        sa.select(
            table.c.category, table.c.team_id, sa.func.sum(table.c.leaves), effort, unestimated
        )
        .where(*in_scope)
        .group_by(table.c.category, table.c.team_id)
    )


def categories(rows: Iterable[Any]) -> list[tuple[str | None, uuid.UUID | None, int, float, int]]:
    """``categories_statement``'s rows with None for the default and for no team."""
    return [
        (category or None, None if team == NO_TEAM else team, int(n), float(e), int(u))
        for category, team, n, e, u in rows
        if n
    ]


def source_rows(dialect: str, *, months: bool, open_months: bool, points: bool) -> Any:
    """The cells' (source, leaves, effort) rows for the parts of a plan they answer, of the
    teams in parameter ``cell_teams`` (NO_TEAM alone for the portfolio's rows): what each
    link source's leaves add up to, to be split across its links
    (``queries.key_result_sums``)."""
    table = table_of(SourceCell)
    return sa.select(
        table.c.source_id.label("source"),
        table.c.leaves.label("leaves"),
        (table.c.points if points else table.c.leaves).label("effort"),
    ).where(
        _in_plan(table, months, open_months),
        among_parameter(table.c.team_id, "cell_teams", dialect),
    )


def request_compaction(session: AsyncSession) -> None:
    """Compact once this transaction commits; only PostgreSQL's triggers append rows."""
    if session.get_bind().dialect.name == "postgresql":
        after_commit(session, COMPACT_JOB)


def _compaction(model: type[SQLModel], key_columns: tuple[str, ...], sums: tuple[str, ...]) -> str:
    """One statement: take the appended rows, add each key's sum into its merged row in
    place, and merge the keys that have none into a new row (in the key index's order, so
    that keys read together sit together). Returns (rows taken, rows made, the ids of merged
    rows now all zero).

    The appended rows go in one statement, so a key's sum is never taken over half of them;
    rows appended meanwhile by other transactions are not seen, and stay for next time."""
    table = table_of(model)
    t, key, figures = table.name, ", ".join(key_columns), ", ".join(sums)
    index = next(i for i in table.indexes if i.name == f"ix_{t}_key")
    in_index_order = ", ".join(c.name for c in index.columns)
    same_key = " AND ".join(f"{t}.{c} = totals.{c}" for c in key_columns)
    return (
        f"WITH taken AS (DELETE FROM {t} WHERE fresh RETURNING {key}, {figures}),"
        f" totals AS (SELECT {key}, {', '.join(f'sum({n}) AS {n}' for n in sums)} FROM taken"
        f" GROUP BY {key} HAVING {' OR '.join(f'sum({n}) <> 0' for n in sums)}),"
        # Each key's merged row, looked up once by the key index as the statement found the
        # table (every part sees one snapshot); the update then goes straight to the row.
        # Only compaction, one at a time, writes merged rows, so none moves meanwhile.
        f" found AS (SELECT {', '.join(f'totals.{c}' for c in (*key_columns, *sums))},"
        f" {t}.ctid AS at FROM totals LEFT JOIN {t} ON NOT {t}.fresh AND {same_key}),"
        f" merged AS (UPDATE {t} SET {', '.join(f'{n} = {t}.{n} + found.{n}' for n in sums)}"
        f" FROM found WHERE {t}.ctid = found.at"
        f" RETURNING {t}.id, {', '.join(f'{t}.{c}' for c in (*key_columns, *sums))}),"
        f" made AS (INSERT INTO {t} ({key}, {figures}, fresh)"
        f" SELECT {key}, {figures}, false FROM found WHERE at IS NULL"
        f" ORDER BY {in_index_order} RETURNING 1)"
        " SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM made),"
        f" ARRAY(SELECT id FROM merged WHERE {' AND '.join(f'{n} = 0' for n in sums)})"
    )


async def compact(session: AsyncSession) -> int:
    """Merge each key's rows into one, for the keys rows were appended to since the last
    compaction, and drop keys that come to nothing; returns how many rows were merged away.
    PostgreSQL only: SQLite's cells are updated in place. Skips if another is compacting.

    A key's merged row is updated in place, not deleted and inserted again: the update
    stays on its page and writes no index entry (the key indexes hold no figures, migration
    c4d9e7a1f2b3), and the row keeps its id."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    connection = await connection_of(session)
    taken = await connection.execute(
        sa.text("SELECT pg_try_advisory_xact_lock(:id)").bindparams(id=COMPACT_LOCK)
    )
    if not taken.scalar_one():
        return 0
    merged = 0
    for model, key_columns, sums in TABLES:
        result = await connection.execute(sa.text(_compaction(model, key_columns, sums)))
        appended, made, zero = result.one()
        if zero:
            table = table_of(model).name
            await connection.execute(
                sa.text(f"DELETE FROM {table} WHERE id = ANY(:ids)").bindparams(ids=zero)
            )
        merged += appended - made + len(zero)
    return merged


# Checking the cells against the leaves, for tests and `okr-sync rollups check`.


def _month(at: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.cast(sa.func.date_trunc("month", sa.func.timezone("UTC", at)), sa.Date)
    return sa.func.strftime("%Y-%m-01", at)


def _contributions(dialect: str) -> Any:
    done = col(WorkItem.status_category) == "done"
    when = sa.case((done, col(WorkItem.resolved_at)), else_=col(WorkItem.created_at))
    return (
        sa.select(
            _month(when, dialect).label("month"),
            sa.case((done, "done"), else_="open").label("state"),
            sa.func.coalesce(col(WorkItem.team_id), NO_TEAM).label("team_id"),
            sa.func.coalesce(col(WorkItem.category), "").label("category"),
            sa.case(
                (col(WorkItem.category) == "strategic", col(WorkItem.decided_by_item_id)),
                else_=None,
            ).label("source"),
            col(WorkItem.estimate).label("estimate"),
        )
        .where(
            col(WorkItem.is_leaf),
            col(WorkItem.deleted_at).is_(None),
            sa.or_(
                sa.and_(done, col(WorkItem.resolved_at).is_not(None)),
                col(WorkItem.status_category).in_(("todo", "in_progress")),
            ),
        )
        .subquery("c")
    )


Figures = tuple[float, ...]  # the leaves' count first
# Sums of differences carry float error; a cell is right to within this.
TOLERANCE = 1e-6
Key = tuple[Any, ...]


def _normal(rows: Iterable[Any], figures: int) -> dict[Key, Figures]:
    """Key to figures (the last ``figures`` of each row), months as dates, without keys that
    add up to nothing."""
    found: dict[Key, Figures] = {}
    for row in rows:
        key, sums = row[:-figures], row[-figures:]
        if sums[0] or any(abs(x) > TOLERANCE for x in sums[1:]):
            month = key[0] if isinstance(key[0], date) else date.fromisoformat(key[0])
            found[(month, *key[1:])] = (int(sums[0]), *(float(x) for x in sums[1:]))
    return found


def _same(a: Figures | None, b: Figures | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(math.isclose(x, y, abs_tol=TOLERANCE) for x, y in zip(a, b, strict=True))


async def _expected(session: AsyncSession) -> tuple[dict[Key, Figures], dict[Key, Figures]]:
    c = _contributions(session.get_bind().dialect.name)
    points = sa.func.coalesce(c.c.estimate, 0.0)
    cells = await fetch_rows(
        session,
        sa.select(
            c.c.month, c.c.state, c.c.team_id, c.c.category, sa.func.count(),
            sa.func.sum(points), sa.func.sum(sa.case((c.c.estimate.is_(None), 1), else_=0)),
        ).group_by(c.c.month, c.c.state, c.c.team_id, c.c.category),
    )  # fmt: skip
    rows = await fetch_rows(
        session,
        sa.select(c.c.month, c.c.state, c.c.team_id, c.c.source, sa.func.count(),
                  sa.func.sum(points))
        .where(c.c.source.is_not(None))
        .group_by(c.c.month, c.c.state, c.c.team_id, c.c.source),
    )  # fmt: skip
    sources: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    for month, state, team, source, leaves, weighted in rows:
        for scope in {NO_TEAM, team}:  # each team's rows and the portfolio's
            sums = sources[(month, state, scope, source)]
            sums[0] += leaves
            sums[1] += weighted
    return _normal(cells, 3), _normal(((*key, *sums) for key, sums in sources.items()), 2)


async def _stored(session: AsyncSession) -> tuple[dict[Key, Figures], dict[Key, Figures]]:
    found = []
    for model, key, sums in TABLES:
        table = table_of(model)
        columns = [table.c[name] for name in key]
        stmt = sa.select(*columns, *(sa.func.sum(table.c[name]) for name in sums))
        found.append(_normal(await fetch_rows(session, stmt.group_by(*columns)), len(sums)))
    return found[0], found[1]


async def drift(session: AsyncSession) -> list[str]:
    """Where the stored cells differ from the leaves, one line per key; none when right."""
    expected, stored = await _expected(session), await _stored(session)
    lines = []
    for name, want, have in zip(("rollup", "source"), expected, stored, strict=True):
        for key in sorted(want.keys() | have.keys(), key=str):
            if not _same(want.get(key), have.get(key)):
                lines.append(f"{name} cell {key}: stored {have.get(key)}, leaves {want.get(key)}")
    return lines


async def rebuild(session: AsyncSession) -> None:
    """Replace every cell with what the leaves add up to (a repair, not a routine)."""
    for (model, key, sums), expected in zip(TABLES, await _expected(session), strict=True):
        table = table_of(model)
        await session.exec(sa.delete(table))
        if expected:
            names = (*key, *sums)
            rows = [dict(zip(names, (*k, *f), strict=True)) for k, f in expected.items()]
            await session.exec(sa.insert(table), params=rows)
