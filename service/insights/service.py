"""OKR health findings (DESIGN section 1): the known ways OKR programmes fail, each with the
entities it names, for a period and a team subtree or the whole portfolio."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.catalog import PeriodRow, TeamTree
from service.insights.schemas import Finding, FindingType, Insights, ItemRef, Named
from service.key_results import repository as key_results
from service.models import KeyResult, Link, Objective, WorkItem
from service.rollups.queries import Basis
from service.rollups.service import period_ref, resolve_scope, team_ref, team_shares
from service.settings import Settings

OPEN = ("todo", "in_progress")


class Report:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[FindingType, int] = defaultdict(int)
        self.findings: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.counts[finding.type] += 1
        if self.counts[finding.type] <= self.limit:
            self.findings.append(finding)


def _in_scope(team_id: uuid.UUID | None, team_ids: AbstractSet[uuid.UUID] | None) -> bool:
    return team_ids is None or team_id in team_ids


async def _objectives(
    session: AsyncSession, report: Report, period: PeriodRow, tree: TeamTree,
    team_ids: AbstractSet[uuid.UUID] | None, settings: Settings,
) -> list[Objective]:  # fmt: skip
    rows = await session.exec(
        select(Objective).where(Objective.period_id == period.id).order_by(col(Objective.id))
    )
    everything = list(rows.all())
    company_level = any(o.team_id is None for o in everything)
    objectives = [o for o in everything if _in_scope(o.team_id, team_ids)]
    per_team: dict[uuid.UUID | None, list[Objective]] = defaultdict(list)
    for objective in objectives:
        per_team[objective.team_id].append(objective)
        team = tree.teams[objective.team_id] if objective.team_id else None
        # Something to align to: the parent team's objectives, or the company's.
        if team is None or objective.parent_id is not None:
            continue
        if team.parent_id is not None or company_level:
            report.add(
                Finding(
                    type="objective_not_aligned",
                    message=f"objective {objective.title!r} aligns to no parent objective",
                    team=team_ref(team),
                    objective=Named(id=objective.id, title=objective.title),
                )
            )
    for team_id, owned in per_team.items():
        if len(owned) > settings.max_objectives_per_team:
            owner = tree.teams[team_id].key if team_id else "the company"
            report.add(
                Finding(
                    type="too_many_objectives",
                    message=f"{owner} has {len(owned)} objectives in {period.name}; "
                    f"at most {settings.max_objectives_per_team} keep a team focused",
                    team=team_ref(tree.teams[team_id]) if team_id else None,
                    details={
                        "count": len(owned),
                        "limit": settings.max_objectives_per_team,
                        "objectives": [{"id": str(o.id), "title": o.title} for o in owned],
                    },
                )
            )
    return objectives


async def _key_results(
    session: AsyncSession, report: Report, period: PeriodRow, objectives: list[Objective],
    settings: Settings, now: datetime,
) -> None:  # fmt: skip
    by_id = {o.id: o for o in objectives}
    krs = list(
        (
            await session.exec(
                select(KeyResult)
                .where(col(KeyResult.objective_id).in_(by_id))
                .order_by(col(KeyResult.id))
            )
        ).all()
    )
    ids = [kr.id for kr in krs]
    linked = set(
        (
            await session.exec(select(Link.key_result_id).where(col(Link.key_result_id).in_(ids)))
        ).all()
    )
    latest = await key_results.latest_check_ins(session, ids)
    started = datetime.combine(period.start, datetime.min.time(), UTC) <= now
    stale_after = timedelta(days=settings.stale_check_in_days)
    for kr in krs:
        objective = Named(id=by_id[kr.objective_id].id, title=by_id[kr.objective_id].title)
        named = Named(id=kr.id, title=kr.title)
        if kr.id not in linked:
            report.add(
                Finding(
                    type="key_result_without_initiatives",
                    message=f"key result {kr.title!r} has no work linked to it",
                    objective=objective,
                    key_result=named,
                )
            )
        check_in = latest.get(kr.id)
        last = check_in.created_at if check_in else kr.created_at
        if started and now - last > stale_after:
            report.add(
                Finding(
                    type="stale_key_result",
                    message=f"key result {kr.title!r} has had no check-in for "
                    f"{(now - last).days} days",
                    objective=objective,
                    key_result=named,
                    details={
                        "last_check_in_at": check_in.created_at.isoformat() if check_in else None,
                        "days": (now - last).days,
                        "limit_days": settings.stale_check_in_days,
                    },
                )
            )


async def _unlinked_epics(
    session: AsyncSession, report: Report, tree: TeamTree, team_ids: AbstractSet[uuid.UUID] | None
) -> None:
    stmt = (
        select(WorkItem)
        .where(
            WorkItem.kind == "epic",
            col(WorkItem.status_category).in_(OPEN),
            col(WorkItem.deleted_at).is_(None),
            sa.or_(col(WorkItem.category).is_(None), col(WorkItem.category) != "strategic"),
        )
        .order_by(col(WorkItem.key))
    )
    if team_ids is not None:
        stmt = stmt.where(col(WorkItem.team_id).in_(team_ids))
    for item in (await session.exec(stmt)).all():
        team = tree.teams.get(item.team_id) if item.team_id else None
        report.add(
            Finding(
                type="unlinked_epic",
                message=f"open epic {item.key} serves no key result",
                team=team_ref(team) if team else None,
                work_item=ItemRef(
                    id=item.id,
                    key=item.key,
                    title=item.title,
                    url=item.url,
                    team=team.key if team else item.team_key,
                ),
            )  # fmt: skip
        )


async def _shares(
    session: AsyncSession, report: Report, period: PeriodRow, tree: TeamTree,
    team_ids: AbstractSet[uuid.UUID] | None, basis: Basis, settings: Settings,
) -> None:  # fmt: skip
    shares = await team_shares(session, period, tree, basis, settings.default_category)
    for team in tree.teams.values():
        share = shares.get(team.id)
        if share is None or team.strategic_target is None or not _in_scope(team.id, team_ids):
            continue
        if share < team.strategic_target:
            report.add(
                Finding(
                    type="strategic_share_below_target",
                    message=f"{team.key}: {share:.0%} of {period.name}'s effort is strategic, "
                    f"below its target of {team.strategic_target:.0%}",
                    team=team_ref(team),
                    details={"share": share, "target": team.strategic_target, "basis": basis},
                )
            )


async def insights(
    *,
    session: AsyncSession,
    period: str,
    team: str | None,
    basis: Basis,
    limit: int,
    settings: Settings,
    now: datetime | None = None,
) -> Insights:
    now = now or datetime.now(UTC)
    found_period, found_team, catalog = await resolve_scope(session, period, team)
    tree = catalog.tree
    team_ids = tree.subtree(found_team.id) if found_team else None
    report = Report(limit)
    objectives = await _objectives(session, report, found_period, tree, team_ids, settings)
    await _key_results(session, report, found_period, objectives, settings, now)
    await _unlinked_epics(session, report, tree, team_ids)
    await _shares(session, report, found_period, tree, team_ids, basis, settings)
    return Insights(
        period=period_ref(found_period),
        team=team_ref(found_team) if found_team else None,
        generated_at=now,
        counts=dict(report.counts),
        findings=report.findings,
    )
