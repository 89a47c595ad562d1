"""SQL for sync runs and for writing synced work items."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.models import Connection, SyncRun, Team, WorkItem
from service.models.base import table_of
from service.pagination import PageParams

ACTIVE = ("queued", "running")
_UPSERT_UPDATES = (
    "key", "url", "title", "kind", "type_name", "status", "status_category", "team_key",
    "team_id", "parent_external_id", "parent_key", "labels", "containers", "estimate", "created_at",
    "updated_at", "started_at", "resolved_at", "deleted_at", "last_seen_run_id", "synced_at",
)  # fmt: skip


async def get_run(session: AsyncSession, run_id: uuid.UUID) -> SyncRun | None:
    return await session.get(SyncRun, run_id)


async def active_run(session: AsyncSession, connection_id: uuid.UUID) -> SyncRun | None:
    stmt = select(SyncRun).where(
        SyncRun.connection_id == connection_id, col(SyncRun.status).in_(ACTIVE)
    )
    return (await session.exec(stmt)).first()


async def list_runs(
    session: AsyncSession, page: PageParams, connection_id: uuid.UUID
) -> list[SyncRun]:
    stmt = select(SyncRun).where(SyncRun.connection_id == connection_id)
    return list((await session.exec(page.apply(stmt, col(SyncRun.id), descending=True))).all())


async def claim(
    session: AsyncSession, run_id: uuid.UUID, *, worker: str, now: datetime, until: datetime
) -> bool:
    """Take the run's lease unless another worker holds a live one."""
    result = await session.exec(
        sa.update(SyncRun)
        .where(
            col(SyncRun.id) == run_id,
            col(SyncRun.status).in_(ACTIVE),
            sa.or_(
                col(SyncRun.lease_expires_at).is_(None),
                col(SyncRun.lease_expires_at) < now,
                col(SyncRun.lease_owner) == worker,
            ),
        )
        .values(
            status="running",
            lease_owner=worker,
            lease_expires_at=until,
            attempts=SyncRun.attempts + 1,
            started_at=sa.func.coalesce(SyncRun.started_at, now),
        )
    )
    return result.rowcount == 1


async def record_page(
    session: AsyncSession,
    run_id: uuid.UUID,
    *,
    worker: str,
    checkpoint: str | None,
    counts: dict[str, int],
    api_calls: int,
    until: datetime,
) -> bool:
    """Save a committed page's cursor and counts; False when the lease was lost."""
    result = await session.exec(
        sa.update(SyncRun)
        .where(col(SyncRun.id) == run_id, col(SyncRun.lease_owner) == worker)
        .values(
            checkpoint=sa.func.coalesce(checkpoint, SyncRun.checkpoint),
            fetched=SyncRun.fetched + counts["fetched"],
            created=SyncRun.created + counts["created"],
            updated=SyncRun.updated + counts["updated"],
            api_calls=SyncRun.api_calls + api_calls,
            pages=SyncRun.pages + 1,
            lease_expires_at=until,
        )
    )
    return result.rowcount == 1


async def release(session: AsyncSession, run_id: uuid.UUID, *, worker: str, api_calls: int) -> None:
    """Give the lease back so a retry may claim the run at once."""
    await session.exec(
        sa.update(SyncRun)
        .where(col(SyncRun.id) == run_id, col(SyncRun.lease_owner) == worker)
        .values(lease_expires_at=None, lease_owner=None, api_calls=SyncRun.api_calls + api_calls)
    )


async def interrupted_runs(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Runs queued or running with no live lease: their worker is gone."""
    stmt = select(SyncRun.id).where(
        col(SyncRun.status).in_(ACTIVE),
        sa.or_(col(SyncRun.lease_expires_at).is_(None), col(SyncRun.lease_expires_at) < now),
    )
    return list((await session.exec(stmt)).all())


class Stored(NamedTuple):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    updated_at: datetime
    deleted_at: datetime | None


async def existing_items(
    session: AsyncSession, connection_id: uuid.UUID, external_ids: Collection[str]
) -> dict[str, Stored]:
    """What is stored of the items among ``external_ids``, by external id."""
    stmt = sa.select(
        col(WorkItem.external_id),
        col(WorkItem.id),
        col(WorkItem.parent_id),
        col(WorkItem.updated_at),
        col(WorkItem.deleted_at),
    ).where(
        col(WorkItem.connection_id) == connection_id, col(WorkItem.external_id).in_(external_ids)
    )
    return {row[0]: Stored(*row[1:]) for row in await fetch_rows(session, stmt)}  # fmt: skip


async def team_ids(session: AsyncSession, keys: Collection[str]) -> dict[str, uuid.UUID]:
    if not keys:
        return {}
    stmt = select(Team.key, Team.id).where(col(Team.key).in_(keys))
    return dict((await session.exec(stmt)).all())


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    """One statement per backend, executed with a list of rows: compiled once, then batched."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table_of(WorkItem))
    return stmt.on_conflict_do_update(
        index_elements=["connection_id", "external_id"],
        set_={name: stmt.excluded[name] for name in _UPSERT_UPDATES},
    )


async def upsert_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update by (connection, external id): running it twice changes nothing."""
    if rows:
        await session.exec(_upsert(session.get_bind().dialect.name), params=list(rows))


async def link_parents(
    session: AsyncSession,
    connection_id: uuid.UUID,
    external_ids: Collection[str],
    keys: Collection[str],
) -> None:
    """Point the page's items at their parents, and earlier children at parents in the page.

    A parent is found by its external id, or by its key where the provider names it only
    so (Jira Data Center's Epic Link). Every step is an indexed lookup, and only rows whose
    parent changes are written: correlated subqueries here were planned badly on a table
    growing under a large sync, before its statistics caught up.
    """
    mine = col(WorkItem.connection_id) == connection_id
    affected = sa.union(
        sa.select(col(WorkItem.id)).where(mine, col(WorkItem.external_id).in_(external_ids)),
        sa.select(col(WorkItem.id)).where(mine, col(WorkItem.parent_external_id).in_(external_ids)),
        sa.select(col(WorkItem.id)).where(mine, col(WorkItem.parent_key).in_(keys)),
    ).subquery()
    rows: list[tuple[uuid.UUID, str | None, str | None, uuid.UUID | None]] = list(
        (
            await session.exec(
                select(
                    WorkItem.id,
                    WorkItem.parent_external_id,
                    WorkItem.parent_key,
                    WorkItem.parent_id,
                ).where(col(WorkItem.id).in_(sa.select(affected.c.id)))
            )
        ).all()
    )
    wanted_ids = {ext for _, ext, _, _ in rows if ext}
    wanted_keys = {key for _, ext, key, _ in rows if key and not ext}
    by_id: dict[str, uuid.UUID] = {}
    if wanted_ids:
        found = await session.exec(
            select(WorkItem.external_id, WorkItem.id).where(
                mine, col(WorkItem.external_id).in_(wanted_ids)
            )
        )
        by_id = dict(found.all())
    by_key: dict[str, uuid.UUID] = {}
    if wanted_keys:
        found_keys = await session.exec(
            select(WorkItem.key, WorkItem.id)
            .where(mine, col(WorkItem.key).in_(wanted_keys))
            # A live item wins over a deleted one that once had the same key.
            .order_by(col(WorkItem.deleted_at).is_not(None).desc())
        )
        by_key = dict(found_keys.all())
    changes = []
    for row_id, parent_external_id, parent_key, current in rows:
        if parent_external_id:
            parent = by_id.get(parent_external_id)
        else:
            parent = by_key.get(parent_key) if parent_key else None
        if parent != current:
            changes.append({"row_id": row_id, "new_parent": parent})
    if changes:
        table = table_of(WorkItem)
        await session.exec(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(parent_id=sa.bindparam("new_parent")),
            params=changes,
        )


async def mark_unseen_deleted(
    session: AsyncSession, connection_id: uuid.UUID, run_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """After a full run: every live item the run did not see is gone at the provider."""
    result = await session.exec(
        sa.update(WorkItem)
        .where(
            col(WorkItem.connection_id) == connection_id,
            col(WorkItem.deleted_at).is_(None),
            sa.or_(
                col(WorkItem.last_seen_run_id).is_(None), col(WorkItem.last_seen_run_id) != run_id
            ),
        )
        .values(deleted_at=now)
        .returning(col(WorkItem.id))
    )
    return list(result.scalars().all())


async def due_connections(session: AsyncSession, now: datetime) -> list[Any]:
    """Connections on a schedule whose interval has passed and that have no active run."""
    active = select(SyncRun.id).where(
        SyncRun.connection_id == Connection.id, col(SyncRun.status).in_(ACTIVE)
    )
    stmt = select(Connection).where(col(Connection.sync_interval_minutes) > 0, ~sa.exists(active))
    rows = (await session.exec(stmt)).all()
    # The interval arithmetic differs per backend; the scheduled set is small, so filter here.
    return [
        c
        for c in rows
        if c.last_sync_at is None
        or c.last_sync_at + timedelta(minutes=c.sync_interval_minutes) <= now
    ]
