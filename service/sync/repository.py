"""SQL for sync runs and for writing synced work items."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import (
    AnyPrepared,
    Prepared,
    Statement,
    among,
    among_parameter,
    chunks,
    connection_of,
    fetch_rows,
    raw_connection,
    reused_plans,
    run,
)
from service.models import Connection, SyncRun, Team, WorkItem
from service.models.base import UTCDateTime, table_of
from service.pagination import PageParams

ACTIVE = ("queued", "running")
# The key space of the per-connection lock that item writers take (two int4 keys; the
# single-bigint advisory locks elsewhere live in a key space of their own).
ITEM_WRITERS_LOCK = 0x6F6B7269  # "okri"
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
    # Derived state as stored: (is_leaf, category, decided_by_item_id, decided_by_rule_id).
    derived: tuple[bool, str | None, uuid.UUID | None, uuid.UUID | None]


@lru_cache(maxsize=2)
def _existing_statement(dialect: str) -> AnyPrepared:
    return Prepared(
        sa.select(
            col(WorkItem.external_id),
            col(WorkItem.id),
            col(WorkItem.parent_id),
            col(WorkItem.updated_at),
            col(WorkItem.deleted_at),
            col(WorkItem.is_leaf),
            col(WorkItem.category),
            col(WorkItem.decided_by_item_id),
            col(WorkItem.decided_by_rule_id),
        ).where(
            col(WorkItem.connection_id) == sa.bindparam("connection_id"),
            among_parameter(col(WorkItem.external_id), "external_ids", dialect),
        )
    )


async def existing_items(
    session: AsyncSession, connection_id: uuid.UUID, external_ids: Collection[str]
) -> dict[str, Stored]:
    """What is stored of the items among ``external_ids``, by external id."""
    stmt = _existing_statement(session.get_bind().dialect.name)
    params = {"connection_id": connection_id, "external_ids": list(external_ids)}
    return {
        row[0]: Stored(row[1], row[2], row[3], row[4], (bool(row[5]), *row[6:]))
        for row in await fetch_rows(session, stmt, params)
    }


async def team_ids(session: AsyncSession, keys: Collection[str]) -> dict[str, uuid.UUID]:
    if not keys:
        return {}
    stmt = select(Team.key, Team.id).where(col(Team.key).in_(keys))
    return dict((await session.exec(stmt)).all())


def _updated(keep_last_seen: bool) -> list[str]:
    return [n for n in _UPSERT_UPDATES if not (keep_last_seen and n == "last_seen_run_id")]


# The columns an upsert writes, with their PostgreSQL types (for its record).
_COLUMNS = {
    "id": "uuid", "connection_id": "uuid", "external_id": "text", "key": "text", "url": "text",
    "title": "text", "kind": "text", "type_name": "text", "status": "text",
    "status_category": "text", "team_key": "text", "team_id": "uuid",
    "parent_external_id": "text", "parent_key": "text", "parent_id": "uuid", "labels": "json",
    "containers": "json", "estimate": "float8", "created_at": "timestamptz",
    "updated_at": "timestamptz", "started_at": "timestamptz", "resolved_at": "timestamptz",
    "deleted_at": "timestamptz", "last_seen_run_id": "uuid", "synced_at": "timestamptz",
    # Written for new rows only (not in the update list): leafness is derived state.
    "is_leaf": "bool",
}  # fmt: skip


@lru_cache(maxsize=4)
def _upsert(dialect: str, keep_last_seen: bool) -> str:
    """The upsert of a page, written once per backend.

    PostgreSQL: one INSERT … SELECT FROM json_to_recordset(the page as one JSON document);
    orjson writes the document in about a quarter of the time asyncpg took to encode one
    array per column, and the one statement fires the roll-up cells' statement triggers once.
    SQLite: one row's INSERT, run for every row by the driver. Either way the rows bypass
    SQLAlchemy's per-row parameter handling, which cost about 100 µs a row, three times the
    database's own work.
    """
    names = list(_COLUMNS)
    conflict = " ON CONFLICT (connection_id, external_id) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in _updated(keep_last_seen)
    )
    if dialect != "postgresql":
        marks = ", ".join("?" for _ in names)
        return f"INSERT INTO work_items ({', '.join(names)}) VALUES ({marks}){conflict}"
    record = ", ".join(f"{c} {_COLUMNS[c]}" for c in names)
    return (
        f"INSERT INTO work_items ({', '.join(names)}) SELECT {', '.join(names)}"
        f" FROM json_to_recordset($1::json) AS v({record}){conflict}"
    )


def sqlite_time(value: datetime) -> str:
    """A timestamp as ``UTCDateTime`` writes it to SQLite (UTC, no offset, microseconds), in
    a fifth of the time its two chained bind processors take: they were 40% of a page."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: okr-sync stores timezone-aware UTC timestamps")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_rows(rows: Sequence[dict[str, Any]], dialect: Any) -> list[tuple[Any, ...]]:
    """Rows as SQLite stores them, through each column type's own bind processor (UUIDs as
    hex, timestamps as UTC text, lists as JSON), with none of the per-row machinery."""
    table = table_of(WorkItem)
    processors = [
        (
            name,
            sqlite_time
            if isinstance(table.c[name].type, UTCDateTime)
            else table.c[name].type.dialect_impl(dialect).bind_processor(dialect),
        )
        for name in _COLUMNS
    ]
    return [
        tuple(
            row[name] if process is None or row[name] is None else process(row[name])
            for name, process in processors
        )
        for row in rows
    ]


_TURN = Statement(sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:connection))"))
_SHARED_TURN = Statement(
    sa.text("SELECT pg_advisory_xact_lock_shared(:space, hashtext(:connection))")
)


async def take_turns(
    session: AsyncSession, connection_id: uuid.UUID, *, shared: bool = False
) -> None:
    """Writers of one connection's items take turns until their transactions end.

    A writer reads what is stored, then writes rows under the ids it found or made; another
    writer inserting the same new item in between would leave this one's ids (and parent
    ids) pointing at nothing. A sync page and a webhook batch of one connection can meet so.
    SQLite's writers take turns already (BEGIN IMMEDIATE); on PostgreSQL, a transaction-scoped
    advisory lock on the connection. ``shared``: for writers that change no items, only
    what is derived from them (link changes), which may run beside each other but not beside
    a writer of the items; they take their own turns per item tree (``derived.state``)."""
    if session.get_bind().dialect.name == "postgresql":
        lock = _SHARED_TURN if shared else _TURN
        await run(session, lock, {"space": ITEM_WRITERS_LOCK, "connection": str(connection_id)})


async def upsert_items(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, keep_last_seen: bool = False
) -> None:
    """Insert or update by (connection, external id): running it twice changes nothing.
    ``keep_last_seen`` leaves a stored item's last sighting by a sync as it was. The caller
    takes its turn (``take_turns``) before it reads what is stored."""
    if not rows:
        return
    await session.flush()
    connection = await connection_of(session)
    driver: Any = (await raw_connection(connection)).driver_connection
    dialect = connection.dialect
    statement = _upsert(dialect.name, keep_last_seen)
    if dialect.name != "postgresql":
        await driver.executemany(statement, _sqlite_rows(rows, dialect))
        return
    # Every value is one orjson writes as PostgreSQL reads it: UUIDs, UTC timestamps in
    # RFC 3339, lists as JSON arrays; keys the record does not name are ignored. ``str``
    # covers asyncpg's own UUIDs (ids read back from the database), which orjson does not.
    document = orjson.dumps(rows, default=str).decode()
    async with reused_plans(session, len(rows)):
        await driver.execute(statement, document)


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


@lru_cache(maxsize=2)
def _children_statements(dialect: str) -> tuple[AnyPrepared, AnyPrepared]:
    """The items of parameter ``connection_id`` whose parent is named, by external id or by
    key, in parameter ``refs``."""
    mine = col(WorkItem.connection_id) == sa.bindparam("connection_id")
    by_external_id = sa.select(
        col(WorkItem.id), col(WorkItem.parent_external_id), col(WorkItem.parent_id)
    ).where(mine, among_parameter(col(WorkItem.parent_external_id), "refs", dialect))
    # Whether the parent is named by id is checked in Python, not in SQL: a condition on
    # parent_external_id steers SQLite onto that index, a scan of every such row.
    by_parent_key = sa.select(
        col(WorkItem.id),
        col(WorkItem.parent_key),
        col(WorkItem.parent_id),
        col(WorkItem.parent_external_id),
    ).where(mine, among_parameter(col(WorkItem.parent_key), "refs", dialect))
    return Prepared(by_external_id), Prepared(by_parent_key)


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
    by_external_id, by_parent_key = _children_statements(session.get_bind().dialect.name)
    changes = []
    for chunk in chunks(list(by_id)):
        params = {"connection_id": connection_id, "refs": chunk}
        for row_id, ref, current in await fetch_rows(session, by_external_id, params):
            if row_id not in page and by_id[ref] != current:
                changes.append({"row_id": row_id, "new_parent": by_id[ref]})
    for chunk in chunks(list(by_key)):
        params = {"connection_id": connection_id, "refs": chunk}
        for row_id, ref, current, named_by_id in await fetch_rows(session, by_parent_key, params):
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


def _unseen(connection_id: uuid.UUID, run_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    return [
        col(WorkItem.connection_id) == connection_id,
        col(WorkItem.deleted_at).is_(None),
        sa.or_(col(WorkItem.last_seen_run_id).is_(None), col(WorkItem.last_seen_run_id) != run_id),
    ]


async def unseen_external_ids(
    session: AsyncSession, connection_id: uuid.UUID, run_id: uuid.UUID
) -> list[str]:
    """The live items a full run has not seen (so far)."""
    result = await session.exec(select(WorkItem.external_id).where(*_unseen(connection_id, run_id)))
    return list(result.all())


async def mark_unseen_deleted(
    session: AsyncSession, connection_id: uuid.UUID, run_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """After a full run: every live item the run did not see is gone at the provider."""
    result = await session.exec(
        sa.update(WorkItem)
        .where(*_unseen(connection_id, run_id))
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
