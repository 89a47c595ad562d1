"""``/v1/objectives``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.objectives import service
from service.objectives.schemas import ObjectiveCreate, ObjectiveOut, ObjectiveUpdate
from service.pagination import Page, PageDep

router = APIRouter(prefix="/v1/objectives", tags=["objectives"])


@router.post("", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_objective(body: ObjectiveCreate, session: SessionDep) -> ObjectiveOut:
    return await service.create(session=session, data=body)


@router.get("", **READ)
async def list_objectives(
    session: SessionDep,
    page: PageDep,
    period: Annotated[str | None, Query(description="Period id or name.")] = None,
    team: Annotated[str | None, Query(description="Owning team's id or key.")] = None,
    company_level: Annotated[
        bool | None, Query(description="true: only company-level; false: only teams'.")
    ] = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Only objectives aligned to this one.")
    ] = None,
) -> Page[ObjectiveOut]:
    return await service.list_page(
        session=session,
        page=page,
        period=period,
        team=team,
        company_level=company_level,
        parent_id=parent_id,
    )


@router.get("/{objective_id}", **READ)
async def get_objective(objective_id: uuid.UUID, session: SessionDep) -> ObjectiveOut:
    objective = await service.get(session=session, objective_id=objective_id)
    return (await service.outs(session, [objective]))[0]


@router.patch("/{objective_id}", **WRITE)
async def update_objective(
    objective_id: uuid.UUID, body: ObjectiveUpdate, session: SessionDep
) -> ObjectiveOut:
    objective = await service.get(session=session, objective_id=objective_id)
    return await service.update(session=session, objective=objective, data=body)


@router.delete("/{objective_id}", status_code=status.HTTP_204_NO_CONTENT, **WRITE)
async def delete_objective(objective_id: uuid.UUID, session: SessionDep) -> Response:
    objective = await service.get(session=session, objective_id=objective_id)
    await service.delete(session=session, objective=objective)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
