"""Roll-ups (DESIGN section 3): how a period's effort splits across strategic, improvement
and heartbeat work, for a team's subtree or the whole portfolio, and across key results."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.key_results import repository as kr_repository
from service.key_results.service import progress_value
from service.models import KeyResult, Objective, Period, Team
from service.periods import service as periods
from service.rollups import queries
from service.rollups.queries import Basis, CategoryRow, KeyResultRow, Scope
from service.rollups.schemas import (
    Categories,
    CategoryTotal,
    KeyResultEffort,
    ObjectiveEffort,
    PeriodRef,
    Rollup,
    TeamRef,
    TeamRollup,
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


@dataclass(frozen=True, slots=True)
class TeamTree:
    """The org tree, read whole: it is small, and subtrees are then set lookups."""

    teams: Mapping[uuid.UUID, TeamRow]
    children: Mapping[uuid.UUID | None, list[TeamRow]]

    @classmethod
    async def read(cls, session: AsyncSession) -> TeamTree:
        stmt = sa.select(
            col(Team.id), col(Team.key), col(Team.name), col(Team.parent_id),
            col(Team.strategic_target),
        ).order_by(col(Team.key))  # fmt: skip
        rows = [TeamRow(*row) for row in await fetch_rows(session, stmt)]
        children: dict[uuid.UUID | None, list[TeamRow]] = defaultdict(list)
        for team in rows:
            children[team.parent_id].append(team)
        return cls({t.id: t for t in rows}, children)

    def subtree(self, root: uuid.UUID) -> set[uuid.UUID]:
        found, stack = set(), [root]
        while stack:
            team_id = stack.pop()
            if team_id not in found:
                found.add(team_id)
                stack.extend(child.id for child in self.children.get(team_id, ()))
        return found


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

    def categories(self) -> Categories:
        total = self.total
        return Categories(
            **{
                name: CategoryTotal(
                    effort=self.effort[name],
                    share=self.effort[name] / total if total > 0 else 0.0,
                    items=self.items[name],
                )
                for name in CATEGORIES
            }
        )


def team_ref(team: Team | TeamRow) -> TeamRef:
    return TeamRef(id=team.id, key=team.key, name=team.name)


def period_ref(period: Period) -> PeriodRef:
    return PeriodRef(id=period.id, name=period.name, start=period.start, end=period.end)


# Past this many ids, reading every row and filtering here beats binding each id.
MANY = 200


def _among(column: Any, ids: Collection[uuid.UUID]) -> list[Any]:
    return [] if len(ids) > MANY else [column.in_(list(ids))]


async def _objectives(
    session: AsyncSession, rows: Sequence[KeyResultRow], total: float
) -> list[ObjectiveEffort]:
    """The KRs that strategic effort went to, under their objectives: read as plain rows,
    since a portfolio can name thousands of KRs."""
    if not rows:
        return []
    by_kr = {row.key_result_id: row for row in rows}
    found = await fetch_rows(
        session,
        sa.select(
            col(KeyResult.id), col(KeyResult.title), col(KeyResult.objective_id),
            col(KeyResult.progress_mode), col(KeyResult.progress_basis),
            col(KeyResult.start_value), col(KeyResult.target_value),
            col(KeyResult.current_value), col(Objective.title), col(Period.name), col(Team.key),
        )
        .join(Objective, col(Objective.id) == KeyResult.objective_id)
        .join(Period, col(Period.id) == Objective.period_id)
        .outerjoin(Team, col(Team.id) == Objective.team_id)
        .where(*_among(col(KeyResult.id), by_kr)),
    )  # fmt: skip
    found = [row for row in found if row[0] in by_kr]
    many = len(by_kr) > MANY
    ids = None if many else [row[0] for row in found]
    latest = await kr_repository.latest_values(session, ids)
    linked = await kr_repository.linked_efforts(
        session, None if many else [row[0] for row in found if row[3] == "linked"]
    )
    grouped: dict[uuid.UUID, list[KeyResultEffort]] = defaultdict(list)
    labels: dict[uuid.UUID, tuple[str, str, str | None]] = {}
    for kr_id, title, objective_id, mode, basis, start, target, current, *label in found:
        row = by_kr[kr_id]
        progress = progress_value(
            mode=mode, basis=basis, start=start, target=target,
            current=latest.get(kr_id, current), linked=linked.get(kr_id),
        )  # fmt: skip
        grouped[objective_id].append(
            KeyResultEffort(
                id=kr_id, title=title, effort=row.effort, items=row.items, progress=progress
            )
        )
        labels[objective_id] = (label[0], label[1], label[2])
    result = []
    for objective_id, key_results in grouped.items():
        key_results.sort(key=lambda k: (-k.effort, k.title))
        effort = sum(k.effort for k in key_results)
        title, period_name, team_key = labels[objective_id]
        result.append(
            ObjectiveEffort(
                id=objective_id, title=title, period=period_name, team=team_key, effort=effort,
                share=effort / total if total > 0 else 0.0, key_results=key_results,
            )
        )  # fmt: skip
    return sorted(result, key=lambda o: (-o.effort, o.title))


async def team_shares(
    session: AsyncSession, period: Period, tree: TeamTree, basis: queries.Basis, default: str
) -> dict[uuid.UUID, float]:
    """The strategic share of each team with a target, over its subtree, for a period; teams
    with no effort in it are left out (a share of nothing is no signal)."""
    rows, _ = await queries.aggregate(
        session, Scope(Window(period.start, period.end), basis, False, None), by_key_result=False
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
) -> tuple[Period, Team | None, TeamTree]:
    period = await periods.resolver.from_query(session, period_ref, "period")
    assert period is not None
    team = await teams.resolver.from_query(session, team_ref, "team")
    return period, team, await TeamTree.read(session)


async def rollup(
    *,
    session: AsyncSession,
    period: str,
    team: str | None,
    basis: Basis,
    include_open: bool,
    default: Category,
) -> Rollup:
    found_period, found_team, tree = await resolve_scope(session, period, team)
    team_ids = tree.subtree(found_team.id) if found_team else None
    scope = Scope(Window(found_period.start, found_period.end), basis, include_open, team_ids)
    rows, key_results = await queries.aggregate(session, scope)
    tally = Tally.of(rows, default.value)
    child_teams = tree.children.get(found_team.id if found_team else None, [])
    breakdown = []
    for child in child_teams:
        members = tree.subtree(child.id)
        child_tally = Tally.of((r for r in rows if r.team_id in members), default.value)
        breakdown.append(TeamRollup(team=team_ref(child), **child_tally.summary()))
    return Rollup(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        basis=basis,
        include_open=include_open,
        **tally.summary(),
        objectives=await _objectives(session, key_results, tally.total),
        teams=breakdown,
    )


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
    points = []
    for window in split(Window(found_period.start, found_period.end), interval):
        scope = Scope(window, basis, include_open, team_ids)
        rows, _ = await queries.aggregate(session, scope, by_key_result=False)
        tally = Tally.of(rows, default.value)
        points.append(TrendPoint(start=window.start, end=window.end, **tally.summary()))
    return Trend(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        basis=basis,
        include_open=include_open,
        interval=interval.value,
        points=points,
    )
