"""``/v1/periods``: the time boxes OKRs and roll-ups are measured in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.pagination import Page, PageDep
from service.periods import service
from service.periods.schemas import PeriodCreate, PeriodOut, PeriodUpdate
from service.schemas import Day

router = APIRouter(prefix="/v1/periods", tags=["periods"])


@router.post("", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_period(body: PeriodCreate, session: SessionDep) -> PeriodOut:
    return await service.create(session=session, data=body)


@router.get("", **READ)
async def list_periods(
    session: SessionDep,
    page: PageDep,
    contains: Annotated[Day | None, Query(description="Only periods containing this day.")] = None,
) -> Page[PeriodOut]:
    return await service.list_page(session=session, page=page, contains=contains)


@router.get("/{period}", **READ)
async def get_period(period: str, session: SessionDep) -> PeriodOut:
    return PeriodOut.model_validate(await service.resolver.get(session, period))


@router.patch("/{period}", **WRITE)
async def update_period(period: str, body: PeriodUpdate, session: SessionDep) -> PeriodOut:
    found = await service.resolver.get(session, period)
    return await service.update(session=session, period=found, data=body)


@router.delete("/{period}", status_code=status.HTTP_204_NO_CONTENT, **WRITE)
async def delete_period(period: str, session: SessionDep) -> Response:
    await service.delete(session=session, period=await service.resolver.get(session, period))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
