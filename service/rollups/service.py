"""Roll-ups (DESIGN section 3): how a period's effort splits across strategic, improvement
and heartbeat work, for a team's subtree or the whole portfolio, and across key results."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import AnyPrepared, Prepared, fetch_rows
from service.key_results.repository import progress_inputs
from service.key_results.service import progress_from
from service.models import KeyResult, KeyResultEffort, Objective, Period, Team
from service.periods import service as periods
from service.refs import as_uuid
from service.rollups import queries
from service.rollups.queries import Basis, CategoryRow, Scope
from service.rollups.schemas import (
    PeriodRef,
    TeamRef,
    Trend,
    TrendPoint,
)
from service.rollups.windows import Interval, Window, split
from service.settings import Category
from service.teams import service as teams

CATEGORIES = ("strategic", "improvement", "heartbeat")


class TeamRow(NamedTuple):
    id: uuid.UUID
    key: str
    name: str
    parent_id: uuid.UUID | None
    strategic_target: float | None


_TEAMS = Prepared(
    sa.select(
        col(Team.id), col(Team.key), col(Team.name), col(Team.parent_id),
        col(Team.strategic_target),
    ).order_by(col(Team.key))
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TeamTree:
    """The org tree, read whole: it is small, and subtrees are then set lookups."""

    teams: Mapping[uuid.UUID, TeamRow]
    children: Mapping[uuid.UUID | None, list[TeamRow]]
    keys: Mapping[str, TeamRow]

    @classmethod
    async def read(cls, session: AsyncSession) -> TeamTree:
        rows = await fetch_rows(session, _TEAMS)
        if rows == _last_tree.rows and _last_tree.tree is not None:
            # Kept as this read's rows: the first read's came through SQLAlchemy (``Row``),
            # later ones from the driver, and asyncpg's records compare with each other in C
            # but with a ``Row`` through its Python ``__eq__``, slower than building the tree.
            _last_tree.rows = rows
            return _last_tree.tree
        teams = [TeamRow(*row) for row in rows]
        children: dict[uuid.UUID | None, list[TeamRow]] = defaultdict(list)
        for team in teams:
            children[team.parent_id].append(team)
        tree = cls({t.id: t for t in teams}, dict(children), {t.key: t for t in teams})
        _last_tree.rows, _last_tree.tree = rows, tree
        return tree

    def find(self, ref: str) -> TeamRow | None:
        """The team ``ref`` names by id or key, as teams.resolver finds it."""
        ref_id = as_uuid(ref)
        return self.teams.get(ref_id) if ref_id else self.keys.get(ref)

    def subtree(self, root: uuid.UUID) -> set[uuid.UUID]:
        found, stack = set(), [root]
        while stack:
            team_id = stack.pop()
            if team_id not in found:
                found.add(team_id)
                stack.extend(child.id for child in self.children.get(team_id, ()))
        return found


@dataclass(slots=True)
class _LastTree:
    """The tree read last, and the rows it was built from. Every roll-up and trend reads
    the whole org (300 teams in the benchmark), which changes rarely, and building the tree
    cost several times comparing the rows: a tree is built again only when a row differs,
    so it is never stale. Its maps are only read once built."""

    rows: Sequence[Any] = ()
    tree: TeamTree | None = None


_last_tree = _LastTree()


@dataclass(slots=True)
class Tally:
    effort: dict[str, float]
    items: dict[str, int]
    unestimated: int = 0

    @classmethod
    def of(cls, rows: Iterable[CategoryRow], default: str) -> Tally:
        tally = cls(dict.fromkeys(CATEGORIES, 0.0), dict.fromkeys(CATEGORIES, 0))
        for row in rows:
            category = row.category or default
            tally.effort[category] += row.effort
            tally.items[category] += row.items
            tally.unestimated += row.unestimated
        return tally

    @property
    def total(self) -> float:
        return sum(self.effort.values())

    def summary(self) -> dict[str, Any]:
        """The fields every roll-up shape shares: total, categories, unestimated items."""
        return {
            "total": self.total,
            "categories": self.categories(),
            "unestimated_items": self.unestimated,
        }

    def categories(self) -> dict[str, dict[str, Any]]:
        """In the shape of schemas.Categories, as plain data: a portfolio's roll-up has one
        per child team, and building models of them cost more than the sums."""
        total = self.total
        return {
            name: {
                "effort": self.effort[name],
                "share": self.effort[name] / total if total > 0 else 0.0,
                "items": self.items[name],
            }
            for name in CATEGORIES
        }


def team_ref(team: Team | TeamRow) -> TeamRef:
    return TeamRef(id=team.id, key=team.key, name=team.name)


def _team_data(team: Team | TeamRow) -> dict[str, Any]:
    """``team_ref`` as plain data (see ``rollup``)."""
    return {"id": team.id, "key": team.key, "name": team.name}


def period_ref(period: Period) -> PeriodRef:
    return PeriodRef(id=period.id, name=period.name, start=period.start, end=period.end)


@lru_cache(maxsize=64)
def _key_results_in(shape: queries.Shape) -> AnyPrepared:
    """Per KR with effort in scope (queries.key_result_sums): its effort, and what a roll-up
    shows of it and its progress needs (its objective, period and team, its latest check-in's
    value and its linked effort), in one query; built once per shape."""
    sums = queries.key_result_sums(shape)
    return Prepared(
        sa.select(
            col(KeyResult.id), col(KeyResult.title), col(KeyResult.objective_id),
            col(Objective.title), col(Period.name), col(Team.key), sums.c.leaves, sums.c.effort,
            *progress_inputs(),
        )
        .select_from(sums)
        .join(KeyResult, col(KeyResult.id) == sums.c.key_result_id)
        .join(Objective, col(Objective.id) == KeyResult.objective_id)
        .join(Period, col(Period.id) == Objective.period_id)
        .outerjoin(Team, col(Team.id) == Objective.team_id)
        .outerjoin(KeyResultEffort, col(KeyResultEffort.key_result_id) == KeyResult.id)
    )  # fmt: skip


_EFFORT, _TITLE = itemgetter("effort"), itemgetter("title")


def _by_effort(entries: list[dict[str, Any]]) -> None:
    """Most effort first, then by title: two stable sorts on plain keys, which cost less
    than a key of a tuple built for each entry."""
    entries.sort(key=_TITLE)
    entries.sort(key=_EFFORT, reverse=True)


async def _objectives(session: AsyncSession, scope: Scope, total: float) -> list[dict[str, Any]]:
    """The KRs that strategic effort went to, under their objectives, as plain data (see
    ``rollup``): a portfolio can name thousands of KRs."""
    stmt = _key_results_in(queries.Shape.of(scope, session.get_bind().dialect.name))
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = {}
    labels: dict[uuid.UUID, tuple[str, str, str | None]] = {}
    for row in await fetch_rows(session, stmt, queries.parameters(scope)):
        # The KR, its title, objective, objective's title, period, team; leaves, effort.
        objective_id = row[2]
        key_results = grouped.get(objective_id)
        if key_results is None:
            key_results = grouped[objective_id] = []
            labels[objective_id] = row[3], row[4], row[5]
        key_results.append(
            {"id": row[0], "title": row[1], "effort": float(row[7]), "items": int(row[6]),
             "progress": progress_from(row[8:])}
        )  # fmt: skip
    result = []
    for objective_id, key_results in grouped.items():
        _by_effort(key_results)
        effort = sum(map(_EFFORT, key_results))
        title, period_name, team_key = labels[objective_id]
        result.append(
            {"id": objective_id, "title": title, "period": period_name, "team": team_key,
             "effort": effort, "share": effort / total if total > 0 else 0.0,
             "key_results": key_results}
        )  # fmt: skip
    _by_effort(result)
    return result


async def team_shares(
    session: AsyncSession, period: Period, tree: TeamTree, basis: queries.Basis, default: str
) -> dict[uuid.UUID, float]:
    """The strategic share of each team with a target, over its subtree, for a period; teams
    with no effort in it are left out (a share of nothing is no signal)."""
    rows = await queries.aggregate(
        session, Scope(Window(period.start, period.end), basis, False, None)
    )
    shares = {}
    for team in tree.teams.values():
        if team.strategic_target is None:
            continue
        members = tree.subtree(team.id)
        tally = Tally.of((r for r in rows if r.team_id in members), default)
        if tally.total > 0:
            shares[team.id] = tally.effort["strategic"] / tally.total
    return shares


async def resolve_scope(
    session: AsyncSession, period_ref: str, team_ref: str | None
) -> tuple[Period, TeamRow | None, TeamTree]:
    period = await periods.resolver.from_query(session, period_ref, "period")
    assert period is not None
    tree = await TeamTree.read(session)
    team = tree.find(team_ref) if team_ref is not None else None
    if team_ref is not None and team is None:
        # Not in the tree: the resolver's answer, as for any query naming a team (a team
        # made since the tree was read is then read again with it).
        await teams.resolver.from_query(session, team_ref, "team")
        tree = await TeamTree.read(session)
        team = tree.find(team_ref)
    return period, team, tree


async def rollup(
    *,
    session: AsyncSession,
    period: str,
    team: str | None,
    basis: Basis,
    include_open: bool,
    default: Category,
) -> dict[str, Any]:
    """The roll-up, as data in the shape of schemas.Rollup: a portfolio names thousands of
    KRs, and building them into models costs more than the queries (the router serialises
    the data as they are; tests hold them to the schema)."""
    found_period, found_team, tree = await resolve_scope(session, period, team)
    team_ids = tree.subtree(found_team.id) if found_team else None
    scope = Scope(Window(found_period.start, found_period.end), basis, include_open, team_ids)
    rows = await queries.aggregate(session, scope)
    tally = Tally.of(rows, default.value)
    child_teams = tree.children.get(found_team.id if found_team else None, [])
    # Each row counts for the child team whose subtree holds its team, in one pass.
    child_of: dict[uuid.UUID | None, uuid.UUID] = {
        member: child.id for child in child_teams for member in tree.subtree(child.id)
    }
    by_child: dict[uuid.UUID, list[CategoryRow]] = {child.id: [] for child in child_teams}
    for row in rows:
        if (child_id := child_of.get(row.team_id)) is not None:
            by_child[child_id].append(row)
    breakdown = [
        {"team": _team_data(child), **Tally.of(by_child[child.id], default.value).summary()}
        for child in child_teams
    ]
    return {
        "period": period_ref(found_period),
        "team": _team_data(found_team) if found_team else None,
        "basis": basis,
        "include_open": include_open,
        **tally.summary(),
        "objectives": await _objectives(session, scope, tally.total),
        "teams": breakdown,
    }


async def trend(
    *,
    session: AsyncSession,
    period: str,
    team: str | None,
    basis: Basis,
    include_open: bool,
    interval: Interval,
    default: Category,
) -> Trend:
    """Each week or month of the period rolled up as a period of its own."""
    found_period, found_team, tree = await resolve_scope(session, period, team)
    team_ids = tree.subtree(found_team.id) if found_team else None
    windows = list(split(Window(found_period.start, found_period.end), interval))
    each = await queries.aggregate_each(session, windows, basis, include_open, team_ids)
    points = [
        TrendPoint(start=window.start, end=window.end, **Tally.of(rows, default.value).summary())
        for window, rows in zip(windows, each, strict=True)
    ]
    return Trend(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        basis=basis,
        include_open=include_open,
        interval=interval.value,
        points=points,
    )
