"""``/v1/key-results`` and their check-ins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.key_results import service
from service.key_results.schemas import (
    CheckInCreate,
    CheckInOut,
    KeyResultCreate,
    KeyResultOut,
    KeyResultUpdate,
    ProgressMode,
)
from service.pagination import Page, PageDep

router = APIRouter(prefix="/v1/key-results", tags=["key results"])


@router.post("", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_key_result(body: KeyResultCreate, session: SessionDep) -> KeyResultOut:
    return await service.create(session=session, data=body)


@router.get("", **READ)
async def list_key_results(
    session: SessionDep,
    page: PageDep,
    objective_id: uuid.UUID | None = None,
    period: Annotated[str | None, Query(description="Period id or name.")] = None,
    team: Annotated[str | None, Query(description="Owning team's id or key.")] = None,
    progress_mode: ProgressMode | None = None,
) -> Page[KeyResultOut]:
    return await service.list_page(
        session=session,
        page=page,
        objective_id=objective_id,
        period=period,
        team=team,
        progress_mode=progress_mode,
    )


@router.get("/{key_result_id}", **READ)
async def get_key_result(key_result_id: uuid.UUID, session: SessionDep) -> KeyResultOut:
    key_result = await service.get(session=session, key_result_id=key_result_id)
    return (await service.outs(session, [key_result]))[0]


@router.patch("/{key_result_id}", **WRITE)
async def update_key_result(
    key_result_id: uuid.UUID, body: KeyResultUpdate, session: SessionDep
) -> KeyResultOut:
    key_result = await service.get(session=session, key_result_id=key_result_id)
    return await service.update(session=session, key_result=key_result, data=body)


@router.delete("/{key_result_id}", status_code=status.HTTP_204_NO_CONTENT, **WRITE)
async def delete_key_result(key_result_id: uuid.UUID, session: SessionDep) -> Response:
    key_result = await service.get(session=session, key_result_id=key_result_id)
    await service.delete(session=session, key_result=key_result)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{key_result_id}/check-ins", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_check_in(
    key_result_id: uuid.UUID, body: CheckInCreate, session: SessionDep
) -> CheckInOut:
    key_result = await service.get(session=session, key_result_id=key_result_id)
    return await service.check_in(session=session, key_result=key_result, data=body)


@router.get("/{key_result_id}/check-ins", **READ)
async def list_check_ins(
    key_result_id: uuid.UUID, session: SessionDep, page: PageDep
) -> Page[CheckInOut]:
    """Check-ins, most recently recorded first."""
    key_result = await service.get(session=session, key_result_id=key_result_id)
    return await service.list_check_ins(session=session, page=page, key_result=key_result)
