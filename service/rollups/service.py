"""Roll-ups (DESIGN section 3): how a period's effort splits across strategic, improvement
and heartbeat work, for a team's subtree or the whole portfolio, and across key results."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.catalog import Catalog, PeriodRow, TeamRow, TeamTree, period_named, team_named
from service.catalog import current as catalog_of
from service.db import AnyPrepared, Prepared, fetch_rows
from service.key_results.service import linked_progress_of
from service.models import KeyResultEffort, Period, Team
from service.models.base import table_of
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

CATEGORIES = ("strategic", "improvement", "heartbeat")


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


def period_ref(period: Period | PeriodRow) -> PeriodRef:
    return PeriodRef(id=period.id, name=period.name, start=period.start, end=period.end)


@lru_cache(maxsize=64)
def _key_results_in(shape: queries.Shape) -> AnyPrepared:
    """Per KR with effort in scope (queries.key_result_sums): its leaves and effort, and its
    linked effort's four sums (NULL with no efforts row), which change with every write to
    the portfolio; what else a roll-up shows of a KR comes from the catalog. Built once per
    shape."""
    sums = queries.key_result_sums(shape)
    efforts = table_of(KeyResultEffort)
    return Prepared(
        sa.select(
            sums.c.key_result_id, sums.c.leaves, sums.c.effort, efforts.c.done_count,
            efforts.c.all_count, efforts.c.done_points, efforts.c.all_points,
        )
        .select_from(sums)
        .outerjoin(efforts, efforts.c.key_result_id == sums.c.key_result_id)
    )  # fmt: skip


_EFFORT, _TITLE = itemgetter("effort"), itemgetter("title")


def _by_effort(entries: list[dict[str, Any]]) -> None:
    """Most effort first, then by title: two stable sorts on plain keys, which cost less
    than a key of a tuple built for each entry."""
    entries.sort(key=_TITLE)
    entries.sort(key=_EFFORT, reverse=True)


async def _objectives(
    session: AsyncSession, catalog: Catalog, scope: Scope, total: float
) -> list[dict[str, Any]]:
    """The KRs that strategic effort went to, under their objectives, as plain data (see
    ``rollup``): a portfolio can name thousands of KRs."""
    stmt = _key_results_in(queries.Shape.of(scope, session.get_bind().dialect.name))
    rows = await fetch_rows(session, stmt, queries.parameters(scope))
    labels = await catalog.labels(session)
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:  # the KR, its leaves and effort, its linked effort's four sums
        label = labels.key_results.get(row[0])
        if label is None:  # gone since the catalog was read (its cells go with it)
            continue
        progress = label.progress
        if progress is None:
            progress = linked_progress_of(label.basis, row[3:])
        key_results = grouped.get(label.objective_id)
        if key_results is None:
            key_results = grouped[label.objective_id] = []
        key_results.append(
            {"id": label.id, "title": label.title, "effort": float(row[2]),
             "items": int(row[1]), "progress": progress}
        )  # fmt: skip
    result = []
    for objective_id, key_results in grouped.items():
        _by_effort(key_results)
        effort = sum(map(_EFFORT, key_results))
        objective = labels.objectives[objective_id]
        result.append(
            {"id": objective.id, "title": objective.title, "period": objective.period,
             "team": objective.team, "effort": effort,
             "share": effort / total if total > 0 else 0.0, "key_results": key_results}
        )  # fmt: skip
    _by_effort(result)
    return result


async def team_shares(
    session: AsyncSession,
    period: Period | PeriodRow,
    tree: TeamTree,
    basis: queries.Basis,
    default: str,
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
) -> tuple[PeriodRow, TeamRow | None, Catalog]:
    """The period and team a request names, and a catalog that holds them."""
    catalog = await catalog_of(session)
    period, catalog = await period_named(session, catalog, period_ref)
    if team_ref is None:
        return period, None, catalog
    team, catalog = await team_named(session, catalog, team_ref)
    return period, team, catalog


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
    found_period, found_team, catalog = await resolve_scope(session, period, team)
    tree = catalog.tree
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
        "objectives": await _objectives(session, catalog, scope, tally.total),
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
    found_period, found_team, catalog = await resolve_scope(session, period, team)
    team_ids = catalog.tree.subtree(found_team.id) if found_team else None
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
