"""SQL for teams."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Objective, Team, WebhookEndpoint
from service.pagination import PageParams

_Parent = aliased(Team)


async def get(session: AsyncSession, team_id: uuid.UUID) -> Team | None:
    return await session.get(Team, team_id)


# Built once: most requests name a team, and building the statement cost more than running it.
_BY_KEY = select(Team).where(Team.key == sa.bindparam("key"))


async def get_by_key(session: AsyncSession, key: str) -> Team | None:
    result = await session.exec(_BY_KEY, params={"key": key})
    return result.first()


async def list_page(
    session: AsyncSession, page: PageParams, *, parent_id: uuid.UUID | None, q: str | None
) -> list[Any]:
    """Teams with their parent's key, as (Team, parent_key) rows."""
    stmt = select(Team, _Parent.key).outerjoin(_Parent, col(Team.parent_id) == _Parent.id)
    if parent_id is not None:
        stmt = stmt.where(col(Team.parent_id) == parent_id)
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            sa.or_(sa.func.lower(Team.name).like(pattern), col(Team.key).like(pattern))
        )
    result = await session.exec(page.apply(stmt, col(Team.id)))
    return list(result.all())


async def key_of(session: AsyncSession, team_id: uuid.UUID | None) -> str | None:
    if team_id is None:
        return None
    result = await session.exec(select(Team.key).where(Team.id == team_id))
    return result.first()


async def has_children(session: AsyncSession, team_id: uuid.UUID) -> bool:
    result = await session.exec(select(Team.id).where(Team.parent_id == team_id).limit(1))
    return result.first() is not None


async def owns_objectives(session: AsyncSession, team_id: uuid.UUID) -> bool:
    result = await session.exec(select(Objective.id).where(Objective.team_id == team_id).limit(1))
    return result.first() is not None


async def filters_webhooks(session: AsyncSession, team_id: uuid.UUID) -> bool:
    stmt = select(WebhookEndpoint.id).where(WebhookEndpoint.team_id == team_id).limit(1)
    return (await session.exec(stmt)).first() is not None
