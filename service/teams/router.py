"""``/v1/teams``: the org tree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.pagination import Page, PageDep
from service.teams import service
from service.teams.schemas import TeamCreate, TeamOut, TeamUpdate

router = APIRouter(prefix="/v1/teams", tags=["teams"])


@router.post("", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_team(body: TeamCreate, session: SessionDep) -> TeamOut:
    return await service.create(session=session, data=body)


@router.get("", **READ)
async def list_teams(
    session: SessionDep,
    page: PageDep,
    parent: Annotated[
        str | None, Query(description="Only children of this team (id or key).")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in key or name.")] = None,
) -> Page[TeamOut]:
    return await service.list_page(session=session, page=page, parent=parent, q=q)


@router.get("/{team}", **READ)
async def get_team(team: str, session: SessionDep) -> TeamOut:
    return await service.to_out(session, await service.resolver.get(session, team))


@router.patch("/{team}", **WRITE)
async def update_team(team: str, body: TeamUpdate, session: SessionDep) -> TeamOut:
    found = await service.resolver.get(session, team)
    return await service.update(session=session, team=found, data=body)


@router.delete("/{team}", status_code=status.HTTP_204_NO_CONTENT, **WRITE)
async def delete_team(team: str, session: SessionDep) -> Response:
    await service.delete(session=session, team=await service.resolver.get(session, team))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
