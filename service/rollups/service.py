"""Roll-ups (DESIGN section 3): how a period's effort splits across strategic, improvement
and heartbeat work, for a team's subtree or the whole portfolio, and across key results."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.key_results.service import ProgressFacts, progress_of
from service.models import KeyResult, Objective, Period, Team
from service.periods import service as periods
from service.rollups import queries
from service.rollups.queries import Basis, CategoryRow, Scope
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


@dataclass(frozen=True, slots=True)
class TeamTree:
    """The org tree, read whole: it is small, and subtrees are then set lookups."""

    teams: Mapping[uuid.UUID, Team]
    children: Mapping[uuid.UUID | None, list[Team]]

    @classmethod
    async def read(cls, session: AsyncSession) -> TeamTree:
        rows = list((await session.exec(select(Team).order_by(col(Team.key)))).all())
        children: dict[uuid.UUID | None, list[Team]] = defaultdict(list)
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


def team_ref(team: Team) -> TeamRef:
    return TeamRef(id=team.id, key=team.key, name=team.name)


def period_ref(period: Period) -> PeriodRef:
    return PeriodRef(id=period.id, name=period.name, start=period.start, end=period.end)


async def _objectives(session: AsyncSession, scope: Scope, total: float) -> list[ObjectiveEffort]:
    rows = await queries.by_key_result(session, scope)
    if not rows:
        return []
    by_kr = {row.key_result_id: row for row in rows}
    krs = list((await session.exec(select(KeyResult).where(col(KeyResult.id).in_(by_kr)))).all())
    facts = await ProgressFacts.read(session, krs)
    objective_ids = {kr.objective_id for kr in krs}
    labelled = await session.exec(
        select(Objective, Period.name, Team.key)
        .join(Period, col(Period.id) == Objective.period_id)
        .outerjoin(Team, col(Team.id) == Objective.team_id)
        .where(col(Objective.id).in_(objective_ids))
    )
    grouped: dict[uuid.UUID, list[KeyResultEffort]] = defaultdict(list)
    for kr in krs:
        row = by_kr[kr.id]
        grouped[kr.objective_id].append(
            KeyResultEffort(
                id=kr.id, title=kr.title, effort=row.effort, items=row.items,
                progress=progress_of(kr, facts),
            )
        )  # fmt: skip
    result = []
    for objective, period_name, team_key in labelled.all():
        key_results = sorted(grouped[objective.id], key=lambda k: (-k.effort, k.title))
        effort = sum(k.effort for k in key_results)
        result.append(
            ObjectiveEffort(
                id=objective.id, title=objective.title, period=period_name, team=team_key,
                effort=effort, share=effort / total if total > 0 else 0.0,
                key_results=key_results,
            )
        )  # fmt: skip
    return sorted(result, key=lambda o: (-o.effort, o.title))


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
    rows = await queries.by_category_and_team(session, scope)
    tally = Tally.of(rows, default.value)
    child_teams = tree.children.get(found_team.id if found_team else None, [])
    breakdown = []
    for child in child_teams:
        members = tree.subtree(child.id)
        child_tally = Tally.of((r for r in rows if r.team_id in members), default.value)
        breakdown.append(
            TeamRollup(
                team=team_ref(child), total=child_tally.total,
                categories=child_tally.categories(), unestimated_items=child_tally.unestimated,
            )
        )  # fmt: skip
    return Rollup(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        basis=basis,
        include_open=include_open,
        total=tally.total,
        categories=tally.categories(),
        unestimated_items=tally.unestimated,
        objectives=await _objectives(session, scope, tally.total),
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
        tally = Tally.of(await queries.by_category_and_team(session, scope), default.value)
        points.append(
            TrendPoint(
                start=window.start, end=window.end, total=tally.total,
                categories=tally.categories(), unestimated_items=tally.unestimated,
            )
        )  # fmt: skip
    return Trend(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        basis=basis,
        include_open=include_open,
        interval=interval.value,
        points=points,
    )
