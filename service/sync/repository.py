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

from service.db import among, chunks, fetch_rows, reused_plans
from service.models import Connection, SyncRun, Team, WorkItem
from service.models.base import table_of
from service.pagination import PageParams

ACTIVE = ("queued", "running")
_UPSERT_UPDATES = (
    "key", "url", "title", "kind", "type_name", "status", "status_category", "team_key",
    "team_id", "parent_external_id", "parent_key", "parent_id", "labels", "containers",
    "estimate", "created_at", "updated_at", "started_at", "resolved_at", "deleted_at",
    "last_seen_run_id", "synced_at",
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
        col(WorkItem.connection_id) == connection_id,
        among(session, col(WorkItem.external_id), external_ids),
    )
    return {row[0]: Stored(*row[1:]) for row in await fetch_rows(session, stmt)}  # fmt: skip


async def team_ids(session: AsyncSession, keys: Collection[str]) -> dict[str, uuid.UUID]:
    if not keys:
        return {}
    stmt = select(Team.key, Team.id).where(col(Team.key).in_(keys))
    return dict((await session.exec(stmt)).all())


@lru_cache(maxsize=8)
def _upsert(dialect: str, keep_last_seen: bool) -> Any:
    """One statement per backend, executed with a list of rows: compiled once, then batched."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table_of(WorkItem))
    updates = [n for n in _UPSERT_UPDATES if not (keep_last_seen and n == "last_seen_run_id")]
    return stmt.on_conflict_do_update(
        index_elements=["connection_id", "external_id"],
        set_={name: stmt.excluded[name] for name in updates},
    )


async def upsert_items(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, keep_last_seen: bool = False
) -> None:
    """Insert or update by (connection, external id): running it twice changes nothing.
    ``keep_last_seen`` leaves a stored item's last sighting by a sync as it was."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        await session.exec(_upsert(dialect, keep_last_seen), params=list(rows))
        return
    # With RETURNING, SQLAlchemy sends the rows as multi-row statements ("insertmanyvalues")
    # instead of asyncpg's executemany, a statement per row: the roll-up cells' statement
    # triggers then run once per thousand rows, not once per row.
    table = table_of(WorkItem)
    async with reused_plans(session):
        await session.exec(
            _upsert(dialect, keep_last_seen).returning(table.c.id), params=list(rows)
        )


async def resolve_parents(
    session: AsyncSession, connection_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Give each row its ``parent_id`` before it is written, parents first.

    A parent in the same page is known already; others are looked up (by external id, or
    by key where the provider names parents only so, a live item winning over a deleted
    one with the same key). Writing the parent with the row saves a second write of most
    rows; ``adopt_children`` then only points earlier children at their parent. Rows come
    back ordered so that a parent in the page precedes its children, as the foreign key is
    checked row by row; a row in a cycle keeps no parent here.
    """
    by_id = {row["external_id"]: row["id"] for row in rows}
    by_key = {row["key"]: row["id"] for row in rows}
    wanted_ids = {r["parent_external_id"] for r in rows if r["parent_external_id"]} - by_id.keys()
    wanted_keys = {
        r["parent_key"] for r in rows if not r["parent_external_id"] and r["parent_key"]
    } - by_key.keys()
    mine = col(WorkItem.connection_id) == connection_id
    stored_ids: dict[str, uuid.UUID] = {}
    stored_keys: dict[str, uuid.UUID] = {}
    if wanted_ids:
        stmt = sa.select(col(WorkItem.external_id), col(WorkItem.id)).where(
            mine, among(session, col(WorkItem.external_id), wanted_ids)
        )
        stored_ids = dict(await fetch_rows(session, stmt))
    if wanted_keys:
        keyed = (
            sa.select(col(WorkItem.key), col(WorkItem.id))
            .where(mine, among(session, col(WorkItem.key), wanted_keys))
            .order_by(col(WorkItem.deleted_at).is_not(None).desc())
        )
        stored_keys = dict(await fetch_rows(session, keyed))
    in_page = {row["id"]: row for row in rows}
    for row in rows:
        if row["parent_external_id"]:
            parent = by_id.get(row["parent_external_id"]) or stored_ids.get(
                row["parent_external_id"]
            )
        elif row["parent_key"]:
            parent = by_key.get(row["parent_key"]) or stored_keys.get(row["parent_key"])
        else:
            parent = None
        row["parent_id"] = parent if parent != row["id"] else None

    depth: dict[uuid.UUID, int] = {}

    def depth_of(row: dict[str, Any]) -> int:
        chain: list[dict[str, Any]] = []
        seen: set[uuid.UUID] = set()
        node: dict[str, Any] | None = row
        while node is not None and node["id"] not in depth:
            if node["id"] in seen:  # a cycle: this link is not written here
                node["parent_id"] = None
                break
            seen.add(node["id"])
            chain.append(node)
            node = in_page.get(node["parent_id"]) if node["parent_id"] else None
        base = depth[node["id"]] + 1 if node is not None and node["id"] in depth else 0
        for member in reversed(chain):
            depth[member["id"]] = base
            base += 1
        return depth[row["id"]]

    return sorted(rows, key=depth_of)


async def adopt_children(
    session: AsyncSession, connection_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> None:
    """Point items stored before their parent at it, now that the parent is in this page.

    Every step is an indexed lookup, and only rows whose parent changes are written:
    correlated subqueries here were planned badly on a table growing under a large sync,
    before its statistics caught up.
    """
    page = {row["id"] for row in rows}
    by_id = {row["external_id"]: row["id"] for row in rows}
    by_key = {row["key"]: row["id"] for row in rows}
    mine = col(WorkItem.connection_id) == connection_id
    changes = []
    for chunk in chunks(list(by_id)):
        stmt = sa.select(
            col(WorkItem.id), col(WorkItem.parent_external_id), col(WorkItem.parent_id)
        ).where(mine, among(session, col(WorkItem.parent_external_id), chunk))
        for row_id, ref, current in await fetch_rows(session, stmt):
            if row_id not in page and by_id[ref] != current:
                changes.append({"row_id": row_id, "new_parent": by_id[ref]})
    for chunk in chunks(list(by_key)):
        # Whether the parent is named by id is checked here, not in SQL: a condition on
        # parent_external_id steers SQLite onto that index, a scan of every such row.
        keyed = sa.select(
            col(WorkItem.id),
            col(WorkItem.parent_key),
            col(WorkItem.parent_id),
            col(WorkItem.parent_external_id),
        ).where(mine, among(session, col(WorkItem.parent_key), chunk))
        for row_id, ref, current, named_by_id in await fetch_rows(session, keyed):
            if row_id not in page and not named_by_id and by_key[ref] != current:
                changes.append({"row_id": row_id, "new_parent": by_key[ref]})
    if changes:
        table = table_of(WorkItem)
        await session.exec(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(parent_id=sa.bindparam("new_parent")),
            params=changes,
        )


async def mark_deleted(
    session: AsyncSession, connection_id: uuid.UUID, external_ids: Collection[str], now: datetime
) -> list[uuid.UUID]:
    """Mark live items among ``external_ids`` deleted; their ids."""
    gone: list[uuid.UUID] = []
    for chunk in chunks(list(external_ids)):
        result = await session.exec(
            sa.update(WorkItem)
            .where(
                col(WorkItem.connection_id) == connection_id,
                among(session, col(WorkItem.external_id), chunk),
                col(WorkItem.deleted_at).is_(None),
            )
            .values(deleted_at=now)
            .returning(col(WorkItem.id))
        )
        gone += result.scalars().all()
    return gone


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
