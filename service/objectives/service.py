"""Rules for objectives: a period, an optional owning team, an alignment tree without cycles."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.derived import state as derived
from service.errors import Conflict, InvalidInput, NotFound
from service.key_results import repository as key_results
from service.key_results.progress import objective_progress
from service.key_results.service import ProgressFacts, progress_of
from service.links import service as links
from service.models import KeyResult, Objective
from service.objectives import repository
from service.objectives.schemas import ObjectiveCreate, ObjectiveOut, ObjectiveUpdate
from service.pagination import Page, PageParams
from service.periods import service as periods
from service.teams import service as teams
from service.trees import would_cycle


async def outs(session: AsyncSession, objectives: Sequence[Objective]) -> list[ObjectiveOut]:
    """Render objectives with progress, in a fixed number of queries whatever their count."""
    ids = [o.id for o in objectives]
    krs = await key_results.of_objectives(session, ids)
    facts = await ProgressFacts.read(session, krs)
    progress: dict[uuid.UUID, list[float]] = defaultdict(list)
    for kr in krs:
        progress[kr.objective_id].append(progress_of(kr, facts))
    period_names, team_keys = await repository.labels(
        session,
        {o.period_id for o in objectives},
        {o.team_id for o in objectives if o.team_id is not None},
    )
    return [
        ObjectiveOut.model_validate(
            {
                **o.model_dump(),
                "period": period_names[o.period_id],
                "team": team_keys.get(o.team_id) if o.team_id else None,
                "progress": objective_progress(progress[o.id]),
                "key_results": len(progress[o.id]),
            }
        )
        for o in objectives
    ]


async def get(*, session: AsyncSession, objective_id: uuid.UUID) -> Objective:
    objective = await repository.get(session, objective_id)
    if objective is None:
        raise NotFound(f"no objective {objective_id}")
    return objective


async def _check_parent(
    session: AsyncSession, objective_id: uuid.UUID | None, parent_id: uuid.UUID
) -> None:
    if await repository.get(session, parent_id) is None:
        raise InvalidInput.at("parent_id", f"no objective {parent_id}")
    if objective_id is not None and await would_cycle(session, Objective, objective_id, parent_id):
        raise InvalidInput.at("parent_id", "an objective cannot align to itself or its descendants")


async def create(*, session: AsyncSession, data: ObjectiveCreate) -> ObjectiveOut:
    period = await periods.resolver.from_body(session, "period", data.period_id, data.period)
    if period is None:
        raise InvalidInput.at("period", "an objective needs a period (period_id or period)")
    team = await teams.resolver.from_body(session, "team", data.team_id, data.team)
    if data.parent_id is not None:
        await _check_parent(session, None, data.parent_id)
    objective = Objective(
        title=data.title,
        description=data.description,
        period_id=period.id,
        team_id=team.id if team else None,
        parent_id=data.parent_id,
    )
    session.add(objective)
    await session.flush()
    return (await outs(session, [objective]))[0]


async def update(
    *, session: AsyncSession, objective: Objective, data: ObjectiveUpdate
) -> ObjectiveOut:
    given = data.model_fields_set
    if "title" in given:
        if data.title is None:
            raise InvalidInput.at("title", "title cannot be null")
        objective.title = data.title
    if "description" in given:
        objective.description = data.description or ""
    if given & {"period_id", "period"}:
        period = await periods.resolver.from_body(session, "period", data.period_id, data.period)
        if period is None:
            raise InvalidInput.at("period", "an objective needs a period")
        objective.period_id = period.id
    if given & {"team_id", "team"}:
        team = await teams.resolver.from_body(session, "team", data.team_id, data.team)
        objective.team_id = team.id if team else None
    if "parent_id" in given:
        if data.parent_id is not None:
            await _check_parent(session, objective.id, data.parent_id)
        objective.parent_id = data.parent_id
    objective.updated_at = datetime.now(UTC)
    session.add(objective)
    await session.flush()
    return (await outs(session, [objective]))[0]


async def list_page(
    *,
    session: AsyncSession,
    page: PageParams,
    period: str | None,
    team: str | None,
    company_level: bool | None,
    parent_id: uuid.UUID | None,
) -> Page[ObjectiveOut]:
    period_row = await periods.resolver.from_query(session, period, "period")
    team_row = await teams.resolver.from_query(session, team, "team")
    rows = await repository.list_page(
        session,
        page,
        period_id=period_row.id if period_row else None,
        team_id=team_row.id if team_row else None,
        company_level=company_level,
        parent_id=parent_id,
    )
    rows, next_cursor = page.split(rows, lambda o: o.id)
    return Page(items=await outs(session, rows), next_cursor=next_cursor)


async def delete(*, session: AsyncSession, objective: Objective) -> None:
    """Delete the objective with its key results and their check-ins."""
    if await repository.has_aligned_children(session, objective.id):
        raise Conflict("other objectives align to this one; re-align or delete them first")
    key_results = await session.exec(
        select(KeyResult.id).where(KeyResult.objective_id == objective.id)
    )
    linked = await links.sources_of(session, list(key_results.all()))
    await session.delete(objective)
    await session.flush()
    await derived.refresh(session, linked)
