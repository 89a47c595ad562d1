"""Rules for teams: unique keys, an org tree without cycles, no orphaned objectives."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import flush_or_conflict
from service.errors import Conflict, InvalidInput
from service.models import Team
from service.pagination import Page, PageParams
from service.refs import Resolver
from service.teams import repository
from service.teams.schemas import TeamCreate, TeamOut, TeamUpdate
from service.trees import would_cycle
from service.work_items import repository as work_items

resolver = Resolver("team", repository.get, repository.get_by_key)


async def to_out(session: AsyncSession, team: Team) -> TeamOut:
    return out(team, await repository.key_of(session, team.parent_id))


def out(team: Team, parent_key: str | None) -> TeamOut:
    return TeamOut.model_validate({**team.model_dump(), "parent": parent_key})


async def create(*, session: AsyncSession, data: TeamCreate) -> TeamOut:
    if await repository.get_by_key(session, data.key) is not None:
        raise Conflict(f"a team with key {data.key!r} exists already")
    parent = await resolver.from_body(session, "parent", data.parent_id, data.parent)
    team = Team(
        key=data.key,
        name=data.name,
        parent_id=parent.id if parent else None,
        strategic_target=data.strategic_target,
    )
    session.add(team)
    await flush_or_conflict(session, f"a team with key {data.key!r} exists already")
    await work_items.assign_team(session, team.key, team.id)
    return out(team, parent.key if parent else None)


async def update(*, session: AsyncSession, team: Team, data: TeamUpdate) -> TeamOut:
    given = data.model_fields_set
    if "key" in given:
        if data.key is None:
            raise InvalidInput.at("key", "key cannot be null")
        if data.key != team.key and await repository.get_by_key(session, data.key) is not None:
            raise Conflict(f"a team with key {data.key!r} exists already")
        if data.key != team.key:
            # Items follow the key their connection's team_map names, not the team row.
            await work_items.assign_team(session, team.key, None)
            await work_items.assign_team(session, data.key, team.id)
        team.key = data.key
    if "name" in given:
        if data.name is None:
            raise InvalidInput.at("name", "name cannot be null")
        team.name = data.name
    if "strategic_target" in given:
        team.strategic_target = data.strategic_target
    if given & {"parent_id", "parent"}:
        parent = await resolver.from_body(session, "parent", data.parent_id, data.parent)
        if parent is not None and await would_cycle(session, Team, team.id, parent.id):
            raise InvalidInput.at("parent", "a team cannot become its own ancestor")
        team.parent_id = parent.id if parent else None
    team.updated_at = datetime.now(UTC)
    session.add(team)
    await flush_or_conflict(session, f"a team with key {team.key!r} exists already")
    return await to_out(session, team)


async def delete(*, session: AsyncSession, team: Team) -> None:
    if await repository.has_children(session, team.id):
        raise Conflict(f"team {team.key!r} has child teams; move or delete them first")
    if await repository.owns_objectives(session, team.id):
        raise Conflict(f"team {team.key!r} still owns objectives; move or delete them first")
    if await repository.filters_webhooks(session, team.id):
        raise Conflict(
            f"webhook endpoints are filtered to team {team.key!r}; change or delete them first"
        )
    await session.delete(team)
    await session.flush()


async def list_page(
    *, session: AsyncSession, page: PageParams, parent: str | None, q: str | None
) -> Page[TeamOut]:
    parent_team = await resolver.from_query(session, parent, "parent")
    parent_id = parent_team.id if parent_team else None
    rows = await repository.list_page(session, page, parent_id=parent_id, q=q)
    rows, next_cursor = page.split(rows, lambda row: row[0].id)
    return Page(items=[out(team, parent_key) for team, parent_key in rows], next_cursor=next_cursor)
