"""Engines and sessions. The caller that opens a unit of work owns its commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from service.errors import Conflict

Ts = TypeVarTuple("Ts")
T = TypeVar("T")

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """The URL with the async driver okr-sync uses for its backend.

    Users write plain ``sqlite:///…`` or ``postgresql://…`` URLs; any driver they name is
    swapped for the one okr-sync ships with.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so SAVEPOINT and our BEGIN work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with "database is locked" instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def json_text(value: Any) -> str:
    """JSON as the database stores it."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for a sqlite or postgresql URL, configured for okr-sync."""
    full = async_url(url)
    # JSON columns (labels, containers, configs) through orjson: derived state and rules
    # read two lists a row, and the standard module took about 5 µs each.
    kwargs.setdefault("json_serializer", json_text)
    kwargs.setdefault("json_deserializer", orjson.loads)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, **kwargs)
        _configure_sqlite(engine)
        return engine
    # asyncpg prepares every statement, and PostgreSQL moves a prepared statement to a generic
    # plan after a few runs. A generic plan made while a table was empty (the first sync of a
    # connection) scans it; as the sync fills it, each page costs more. Custom plans see the
    # parameters and the table as it is now, for a little planning time per statement.
    kwargs.setdefault("connect_args", {}).setdefault("server_settings", {}).setdefault(
        "plan_cache_mode", "force_custom_plan"
    )
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(full, **kwargs)


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        engine = create_engine(url, **kwargs)
        return cls(engine, sessions_for(engine))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        """Reach the database without opening a transaction, so no lock is waited for."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def sessions_for(bind: Any, **kwargs: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind, class_=AsyncSession, expire_on_commit=False, **kwargs)


async def flush_or_conflict(session: AsyncSession, detail: str) -> None:
    """Flush pending changes, turning a unique-constraint race into a 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(detail) from exc


async def execute(session: AsyncSession, stmt: Any, params: Any = None) -> Any:
    """A Core statement on the session's connection, past the ORM's execution layer, which
    cost about 200 µs a statement more (a link change runs a score of them). Pending changes
    are flushed first, as ``session.exec`` would."""
    await session.flush()
    return await (await session.connection()).execute(stmt, params)


async def fetch_rows(
    session: AsyncSession, stmt: sa.Select[*Ts], params: Mapping[str, Any] | None = None
) -> Sequence[sa.Row[*Ts]]:
    """The rows of a Core select wider than sqlmodel's typed ``select`` overloads allow."""
    result = await execute(session, stmt, params)
    rows: Sequence[sa.Row[*Ts]] = result.all()
    return rows


def among(session: AsyncSession, column: Any, values: Collection[Any]) -> Any:
    """``column IN values``. On PostgreSQL, ``= ANY`` of one array parameter: a statement
    with thousands of ids then neither renders thousands of parameters nor plans them."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def among_parameter(column: Any, name: str, dialect: str) -> Any:
    """``column IN`` the list given later as parameter ``name``, as ``among`` renders it: for
    statements built once and run with many parameters."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=ARRAY(column.type)))
    return column.in_(sa.bindparam(name, expanding=True))


# Below this many rows, planning the checks again (about 25 µs a row and foreign key) costs
# less than the two statements that let them reuse their plans.
REUSED_PLANS_FROM = 20


@asynccontextmanager
async def reused_plans(session: AsyncSession, rows: int) -> AsyncIterator[None]:
    """Within, PostgreSQL plans as it would by default (``plan_cache_mode=auto``), for a
    bulk write of ``rows`` rows.

    The engine forces custom plans (see ``create_engine``), and that holds for the plans of
    foreign-key checks too: a bulk write then plans every check of every row again, about
    16 µs each, a third of the time of writing 10k effective links. Around the bulk writes
    whose own plan is simple, checks reuse their plans. Restored on success only: a failed
    statement aborts the transaction, and its rollback undoes ``SET LOCAL`` anyway.
    """
    if session.get_bind().dialect.name != "postgresql" or rows < REUSED_PLANS_FROM:
        yield
        return
    connection = await session.connection()
    await connection.execute(sa.text("SET LOCAL plan_cache_mode = auto"))
    yield
    await connection.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def chunks(values: Iterable[T], size: int = 5000) -> Iterator[list[T]]:
    """``values`` in lists of ``size``: IN lists stay within every driver's parameter limit."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
