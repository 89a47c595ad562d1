"""SQL for API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import catalog
from service.db import Prepared, Statement, fetch_rows, run
from service.models import ApiToken
from service.pagination import PageParams


async def get(session: AsyncSession, token_id: uuid.UUID) -> ApiToken | None:
    return await session.get(ApiToken, token_id)


async def get_by_hash(session: AsyncSession, token_hash: str) -> ApiToken | None:
    result = await session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash))
    return result.first()


class Grant(NamedTuple):
    """What a request's token allows, as ``authenticate`` checks it."""

    id: uuid.UUID
    scope: str
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None


# With the catalog's token: most requests that read ask for it next (service.catalog).
_GRANT = Prepared(
    sa.select(
        col(ApiToken.id), col(ApiToken.scope), col(ApiToken.revoked_at),
        col(ApiToken.expires_at), col(ApiToken.last_used_at), catalog.TOKEN,
    ).where(col(ApiToken.token_hash) == sa.bindparam("token_hash"))
)  # fmt: skip


async def grant_of(session: AsyncSession, token_hash: str) -> Grant | None:
    """The grant of the token with this hash: read on every request, so a plain row."""
    rows = await fetch_rows(session, _GRANT, {"token_hash": token_hash})
    if not rows:
        return None
    catalog.offer_token(session, rows[0][5])
    return Grant(*rows[0][:5])


async def any_exists(session: AsyncSession) -> bool:
    result = await session.exec(select(ApiToken.id).limit(1))
    return result.first() is not None


async def list_page(
    session: AsyncSession, page: PageParams, *, include_revoked: bool
) -> list[ApiToken]:
    stmt = select(ApiToken)
    if not include_revoked:
        stmt = stmt.where(col(ApiToken.revoked_at).is_(None))
    result = await session.exec(page.apply(stmt, col(ApiToken.id)))
    return list(result.all())


# The row is locked with SKIP LOCKED: when a minute's resolution runs out, every request
# with the token wants to write it, and each waited for the one before it to commit (a link
# change holds the lock for its whole transaction; seen as 370 ms stalls under bench.load).
# The one that holds the lock writes the same minute; the others go on. SQLite's writers
# take turns anyway, and it renders no FOR UPDATE.
_TOUCH = Statement(
    sa.update(ApiToken)
    .where(
        col(ApiToken.id)
        == sa.select(col(ApiToken.id))
        .where(col(ApiToken.id) == sa.bindparam("token_id"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(last_used_at=sa.bindparam("when"))
)


async def touch(session: AsyncSession, token_id: uuid.UUID, when: datetime) -> None:
    """Record a use, unless another request is recording one right now."""
    await run(session, _TOUCH, {"token_id": token_id, "when": when})


async def delete(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.exec(sa.delete(ApiToken).where(col(ApiToken.id) == token_id))
