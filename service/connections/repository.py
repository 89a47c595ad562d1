"""SQL for connections."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Connection
from service.pagination import PageParams


async def get(session: AsyncSession, connection_id: uuid.UUID) -> Connection | None:
    return await session.get(Connection, connection_id)


async def get_by_name(session: AsyncSession, name: str) -> Connection | None:
    return (await session.exec(select(Connection).where(Connection.name == name))).first()


async def list_page(
    session: AsyncSession, page: PageParams, *, provider: str | None
) -> list[Connection]:
    stmt = select(Connection)
    if provider is not None:
        stmt = stmt.where(col(Connection.provider) == provider)
    return list((await session.exec(page.apply(stmt, col(Connection.id)))).all())
