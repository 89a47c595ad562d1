"""Engines and sessions. The caller that opens a unit of work owns its commit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from service.errors import Conflict

if TYPE_CHECKING:
    from service.settings import Settings

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


# In a session's info: made by ``Database.reading``, so it writes nothing but a token's use.
READS_ONLY = "reads_only"


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
        # SQLite's writers take turns on the file; the pool's size is PostgreSQL's matter.
        kwargs.pop("pool_size", None)
        kwargs.pop("max_overflow", None)
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
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 0)  # see Settings.database_max_overflow
    # The most recently returned connection is handed out first: under load a few stay busy
    # and are never idle long enough to need a ping (below); the rest idle and are pinged.
    kwargs.setdefault("pool_use_lifo", True)
    engine = create_async_engine(full, **kwargs)
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 1.0


def _ping(dbapi_connection: Any) -> None:
    dbapi_connection.ping()


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection on checkout only if it idled in the pool past ``PING_AFTER_IDLE``.

    A connection PostgreSQL dropped (a restart, a terminated backend, a proxy's idle
    timeout) is then replaced before a request sees it, as ``pool_pre_ping`` would. That
    pings every checkout, and asyncpg's ping is BEGIN, a query and ROLLBACK: three round
    trips before each request's own. A connection returned within the last second was
    working then; if the server died since, the request fails as one already running
    would, and the pool then drops every connection made before the failure.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.pop("returned_at", None)
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE:
            return
        try:
            _ping(dbapi_connection)
        except Exception as exc:
            # The pool closes this one and checks out another (PoolEvents.checkout).
            raise DisconnectionError("the connection was dropped while idle") from exc


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Sessions whose statements each commit on their own (``reading``); None: ``reading``
    # is a transaction (tests, whose sessions share one rolled-back transaction).
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database, its pool sized as the settings say."""
        return cls.from_url(
            settings.effective_database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        engine = create_engine(url, **kwargs)
        if engine.dialect.name != "postgresql":
            # SQLite's reads stay transactions: its driver's own transaction handling would
            # come back with the isolation level reset on each checkin (_configure_sqlite).
            return cls(engine, sessions_for(engine))
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(engine, sessions_for(engine), sessions_for(autocommit))

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for work that only reads: on PostgreSQL no BEGIN and no COMMIT, two
        round trips fewer.

        Each statement then runs in a transaction of its own. Under READ COMMITTED, which
        okr-sync's transactions use, each statement of a transaction reads its own snapshot
        anyway, so a read sees what it would have seen. A write made here (an API token's
        last use) commits at once; nothing that needs two writes to stand together, a
        savepoint or a transaction-scoped lock belongs here.
        """
        if self.read_sessionmaker is None:
            async with self.transaction() as session:
                session.info[READS_ONLY] = True
                yield session
            return
        async with self.read_sessionmaker() as session:
            session.info[READS_ONLY] = True
            yield session

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


async def flush_pending(session: AsyncSession) -> None:
    """Flush the session's pending changes, as ``session.exec`` would before a statement.
    Most sessions have none (every read), and an empty flush still crossed into
    SQLAlchemy's greenlet to find that out: a few a request. The test is the one a flush
    makes; ``session.dirty`` built a set of the modified objects to find it empty (8 µs)."""
    sync = session.sync_session
    if sync.identity_map.check_modified() or sync.new or sync.deleted:
        await session.flush()


# Where a session keeps the connection its transaction holds (``connection_of``).
_CONNECTION = "okr_sync.connection"


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """``session.connection()``: the connection of the session's transaction, begun if need
    be. Once the transaction holds one, it is the same connection until the transaction
    ends, and asking SQLAlchemy again crossed into its greenlet each time (40 µs of the
    190 a one-row select cost); a request runs a few to a score of statements."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_CONNECTION)
    if transaction is not None and transaction.is_active and held and held[0] is transaction:
        connection: AsyncConnection = held[1]
        return connection
    connection = await session.connection()
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), connection)
    return connection


async def raw_connection(connection: AsyncConnection) -> PoolProxiedConnection:
    """``connection.get_raw_connection()``: the pooled driver connection. One the connection
    holds already is an attribute; the await crossed into SQLAlchemy's greenlet for it."""
    sync = connection.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection
    return await connection.get_raw_connection()


async def execute(session: AsyncSession, stmt: Any, params: Any = None) -> Any:
    """A Core statement on the session's connection, past the ORM's execution layer, which
    cost about 200 µs a statement more (a link change runs a score of them). Pending changes
    are flushed first, as ``session.exec`` would."""
    await flush_pending(session)
    return await (await connection_of(session)).execute(stmt, params)


@dataclass(frozen=True, slots=True)
class _Text:
    """A select compiled for one dialect: its SQL, its parameters in their places with what
    converts each value for the driver, and the values fixed when it was built."""

    sql: str
    names: tuple[str, ...]
    converters: tuple[Any, ...]
    fixed: Mapping[str, Any]

    def values(self, params: Mapping[str, Any] | None) -> tuple[Any, ...]:
        given = {**self.fixed, **(params or {})}
        return tuple(
            given[name] if convert is None else convert(given[name])
            for name, convert in zip(self.names, self.converters, strict=True)
        )


def _text_of(statement: sa.Select[*Ts], dialect: Any, types: Sequence[Any]) -> _Text | None:
    """``statement`` as text for ``dialect``, or None where SQLAlchemy must run it: a column
    whose values it converts on the way out (given ``types``, the driver's types of the
    columns), or a parameter rendered late."""
    columns = statement.selected_columns
    if len(columns) != len(types) or any(
        column.type.dialect_impl(dialect).result_processor(dialect, type_) is not None
        for column, type_ in zip(columns, types, strict=True)
    ):
        return None
    return _compiled_text(statement, dialect)


def _compiled_text(statement: sa.Executable, dialect: Any) -> _Text | None:
    """``statement`` compiled for ``dialect`` as text and its parameters' places, or None
    where a parameter is rendered late (an expanding IN, a literal)."""
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds = compiled.binds
    if compiled.positiontup is None or any(
        bind.expanding or bind.literal_execute for bind in binds.values()
    ):
        return None
    names = tuple(compiled.positiontup)
    converters = tuple(binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    return _Text(
        sql=compiled.string,
        names=names,
        converters=converters,
        fixed={n: b.effective_value for n, b in binds.items() if not b.required},
    )


class Prepared(Generic[*Ts]):
    """A select built once and run many times. On PostgreSQL, from its second run on, it
    runs as its SQL text on the driver (``_driver_rows``, or ``exec_driver_sql`` where
    cursor events listen), past the compiled-statement cache and the result set-up of
    SQLAlchemy's execution layer, and the API runs a few to a score of such statements a
    request. Its rows are then the driver's values, so only a select none of whose columns
    SQLAlchemy converts (as the first run, through SQLAlchemy, tells from the types the
    driver returned) runs so; others, and SQLite, run as any select."""

    __slots__ = ("_texts", "statement")

    def __init__(self, statement: sa.Select[*Ts]) -> None:
        self.statement = statement
        self._texts: dict[str, _Text | None] = {}

    def text_for(self, dialect: Any) -> _Text | None:
        return self._texts.get(dialect.name)

    def learn(self, dialect: Any, description: Sequence[Sequence[Any]] | None) -> None:
        """Decide, after a run through SQLAlchemy, whether the next run as text."""
        if dialect.name in self._texts or dialect.name != "postgresql" or description is None:
            return
        types = [column[1] for column in description]
        self._texts[dialect.name] = _text_of(self.statement, dialect, types)


# A Prepared select whose columns its builder leaves untyped.
AnyPrepared = Prepared[*tuple[Any, ...]]


async def fetch_rows(
    session: AsyncSession,
    stmt: sa.Select[*Ts] | Prepared[*Ts],
    params: Mapping[str, Any] | None = None,
) -> Sequence[sa.Row[*Ts]]:
    """The rows of a Core select wider than sqlmodel's typed ``select`` overloads allow."""
    if not isinstance(stmt, Prepared):
        result = await execute(session, stmt, params)
    else:
        dialect = session.get_bind().dialect
        text = stmt.text_for(dialect)
        if text is None:
            result = await execute(session, stmt.statement, params)
            stmt.learn(dialect, result.cursor.description)
        else:
            ran = await _run_text(session, text, params)
            if not isinstance(ran, sa.CursorResult):
                records: Sequence[sa.Row[*Ts]] = ran
                return records
            result = ran
    rows: Sequence[sa.Row[*Ts]] = result.all()
    return rows


async def _run_text(session: AsyncSession, text: _Text, params: Mapping[str, Any] | None) -> Any:
    """``text`` run on the session's connection after its pending changes: on the driver
    (asyncpg's records), or through ``exec_driver_sql`` (a result) where cursor events
    listen."""
    await flush_pending(session)
    connection = await connection_of(session)
    if _cursor_events(connection):
        return await connection.exec_driver_sql(text.sql, text.values(params))
    return await _driver_rows(connection, text.sql, text.values(params))


async def _driver_rows(connection: AsyncConnection, sql: str, args: tuple[Any, ...]) -> Any:
    """``sql``'s rows as asyncpg's records, run as SQLAlchemy's asyncpg adapter runs a
    statement (in the connection's transaction, begun first if need be; its cache of prepared
    statements; its errors) without its cursor, result and row objects. Measured on this
    machine's kind: 190 -> 120 µs of CPU for one row, 945 -> 415 µs for 300 (a roll-up reads
    the team tree and hundreds of cells and KRs). Records index, slice and unpack as rows
    do, though not by attribute. Only where no cursor event listens (tracing's
    spans come from them); written against the adapter of the pinned SQLAlchemy."""
    raw = await raw_connection(connection)
    adapter: Any = raw.dbapi_connection  # SQLAlchemy's AsyncAdapt_asyncpg_connection
    async with adapter._execute_mutex:
        if adapter._transaction is None:
            await adapter._start_transaction()
        dialect: Any = connection.dialect
        try:
            prepared, _ = await adapter._prepare(sql, dialect._invalidate_schema_cache_asof)
            return await prepared.fetch(*args)
        except Exception as error:
            # Raised as SQLAlchemy's own path raises it; a connection that died is not handed
            # out again.
            closed = adapter._connection.is_closed()
            if closed:
                await connection.invalidate(error)
            dbapi_error = dialect.loaded_dbapi.Error
            try:
                adapter._handle_exception(error)
            except dbapi_error as translated:
                raise sa.exc.DBAPIError.instance(
                    sql, args, translated, dbapi_error, connection_invalidated=closed,
                    dialect=dialect,
                ) from error  # fmt: skip
            raise


class Statement:
    """A write or a lock built once and run many times, whose rows nobody reads (``run``).
    On PostgreSQL it runs as its SQL text on the driver, as a ``Prepared`` select does:
    SQLAlchemy's execution layer cost about 300,000 instructions a statement, and a link
    change runs five to eight such (its locks, its derived state, its KRs' effort): a link
    made and removed again took 35.7 million instructions, 31.3 with these on the driver.
    Elsewhere, and where a parameter is rendered late, it runs as any statement."""

    __slots__ = ("_texts", "statement")

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._texts: dict[str, _Text | None] = {}

    def text_for(self, dialect: Any) -> _Text | None:
        if dialect.name not in self._texts:
            postgres = dialect.name == "postgresql"
            self._texts[dialect.name] = (
                _compiled_text(self.statement, dialect) if postgres else None
            )
        return self._texts[dialect.name]


async def run(
    session: AsyncSession, stmt: Statement, params: Mapping[str, Any] | None = None
) -> None:
    """Run ``stmt`` on the session's connection, its rows left unread. Pending changes are
    flushed first, as ``execute`` does."""
    text = stmt.text_for(session.get_bind().dialect)
    if text is None:
        await execute(session, stmt.statement, params)
        return
    await _run_text(session, text, params)


def _cursor_events(connection: AsyncConnection) -> bool:
    """Whether anything listens to the connection's cursor events (tracing's spans)."""
    events = connection.sync_connection and connection.sync_connection.dispatch
    return not events or bool(events.before_cursor_execute or events.after_cursor_execute)


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
    await run(session, _REUSED_PLANS)
    yield
    await run(session, _CUSTOM_PLANS)


_REUSED_PLANS = Statement(sa.text("SET LOCAL plan_cache_mode = auto"))
_CUSTOM_PLANS = Statement(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
