"""Queries over the self-referencing trees (teams, objective alignment)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession


async def ancestor_ids(session: AsyncSession, table: Any, node_id: uuid.UUID) -> set[uuid.UUID]:
    """The node and every node above it, through ``table.parent_id``, in one query."""
    chain = sa.select(table.id, table.parent_id).where(table.id == node_id).cte(recursive=True)
    chain = chain.union(
        sa.select(table.id, table.parent_id).join(chain, table.id == chain.c.parent_id)
    )
    result = await session.exec(select(chain.c.id))
    return set(result)


async def would_cycle(
    session: AsyncSession, table: Any, node_id: uuid.UUID, new_parent_id: uuid.UUID
) -> bool:
    """Whether making ``new_parent_id`` the parent of ``node_id`` closes a loop."""
    return node_id in await ancestor_ids(session, table, new_parent_id)
