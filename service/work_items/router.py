"""``/v1/work-items``: the epics, projects and issues synced from the providers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from connectors import Kind, StatusCategory
from service.auth.dependencies import READ
from service.deps import SessionDep, SettingsDep
from service.jsonbody import dumps
from service.pagination import Page, PageDep
from service.settings import Category
from service.work_items import service
from service.work_items.schemas import WorkItemDetail, WorkItemOut

router = APIRouter(prefix="/v1/work-items", tags=["work items"])


@router.get("", response_model=Page[WorkItemOut], **READ)
async def list_work_items(
    session: SessionDep,
    settings: SettingsDep,
    page: PageDep,
    team: Annotated[str | None, Query(description="Team id or key.")] = None,
    connection: Annotated[str | None, Query(description="Connection id or name.")] = None,
    kind: Kind | None = None,
    status_category: StatusCategory | None = None,
    parent_id: uuid.UUID | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in key or title.")] = None,
    include_deleted: bool = False,
    linked: Annotated[
        bool | None, Query(description="Only items whose effort counts toward a KR, or only not.")
    ] = None,
    category: Category | None = None,
) -> Any:
    page_data = await service.list_page(
        session=session,
        page=page,
        team=team,
        connection=connection,
        kind=kind,
        status_category=status_category,
        parent_id=parent_id,
        q=q,
        include_deleted=include_deleted,
        linked=linked,
        category=category,
        default=settings.default_category,
    )
    # Already in the schema's shape: serialised as it is, not validated into models again.
    return Response(dumps(page_data), media_type="application/json")


@router.get("/{item}", **READ)
async def get_work_item(item: str, session: SessionDep, settings: SettingsDep) -> WorkItemDetail:
    """One item, by id or by key (PAY-12, ENG-42, acme/api#12), with the key results its
    effort counts toward, its category, and which links or rule decided it."""
    return await service.get(session=session, ref=item, default=settings.default_category)
