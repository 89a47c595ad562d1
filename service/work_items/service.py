"""Reading synced work items; they are written only by the sync engine."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import Kind, StatusCategory
from service.connections import service as connections
from service.errors import Conflict, NotFound
from service.pagination import Page, PageParams
from service.refs import as_uuid
from service.teams import service as teams
from service.work_items import repository
from service.work_items.schemas import WorkItemOut


def out(row: Any) -> WorkItemOut:
    item, team_key, parent_key = row
    return WorkItemOut.model_validate({**item.model_dump(), "team": team_key, "parent": parent_key})


async def get(*, session: AsyncSession, ref: str) -> WorkItemOut:
    """The item a path names by id or key (PAY-12, acme/api#12)."""
    item_id = as_uuid(ref)
    if item_id is not None:
        row = await repository.get(session, item_id)
        if row is None:
            raise NotFound(f"no work item {ref!r}")
        return out(row)
    rows = await repository.get_by_key(session, ref)
    if not rows:
        raise NotFound(f"no work item {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"several connections have an item {ref!r}; name it by id")
    return out(rows[0])


async def list_page(
    *,
    session: AsyncSession,
    page: PageParams,
    team: str | None,
    connection: str | None,
    kind: Kind | None,
    status_category: StatusCategory | None,
    parent_id: uuid.UUID | None,
    q: str | None,
    include_deleted: bool,
) -> Page[WorkItemOut]:
    team_row = await teams.resolver.from_query(session, team, "team")
    connection_row = await connections.resolver.from_query(session, connection, "connection")
    rows = await repository.list_page(
        session,
        page,
        team_id=team_row.id if team_row else None,
        connection_id=connection_row.id if connection_row else None,
        kind=kind.value if kind else None,
        status_category=status_category.value if status_category else None,
        parent_id=parent_id,
        q=q,
        include_deleted=include_deleted,
    )
    rows, next_cursor = page.split(rows, lambda row: row[0].id)
    return Page(items=[out(row) for row in rows], next_cursor=next_cursor)
