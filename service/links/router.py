"""``/v1/links``: which work serves which key result."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.links import service
from service.links.schemas import LinkCreate, LinkOut, Origin
from service.pagination import Page, PageDep

router = APIRouter(prefix="/v1/links", tags=["links"])


@router.post("", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_link(body: LinkCreate, session: SessionDep) -> LinkOut:
    """Link a work item to a key result. The item's effort, and that of everything below it
    with no links of its own, then counts toward the KR."""
    return await service.create(session=session, data=body)


@router.get("", **READ)
async def list_links(
    session: SessionDep,
    page: PageDep,
    key_result_id: uuid.UUID | None = None,
    work_item: Annotated[str | None, Query(description="Work item id or key.")] = None,
    origin: Origin | None = None,
) -> Page[LinkOut]:
    return await service.list_page(
        session=session, page=page, key_result_id=key_result_id, work_item=work_item, origin=origin
    )


@router.get("/{link_id}", **READ)
async def get_link(link_id: uuid.UUID, session: SessionDep) -> LinkOut:
    return await service.get(session=session, link_id=link_id)


@router.delete("/{link_id}", status_code=status.HTTP_204_NO_CONTENT, **WRITE)
async def delete_link(link_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete(session=session, link_id=link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
