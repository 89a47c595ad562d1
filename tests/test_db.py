"""Engine and session helpers of service.db."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from service import db
from service.db import REUSED_PLANS_FROM, Database, reused_plans
from service.models import ApiToken
from service.models.base import UTCDateTime, table_of
from service.settings import Settings

BULK = REUSED_PLANS_FROM


async def plan_cache_mode(session: AsyncSession) -> str:
    connection = await session.connection()
    return str((await connection.execute(sa.text("SHOW plan_cache_mode"))).scalar_one())


async def test_reused_plans_lets_postgres_reuse_plans_only_within(session: AsyncSession) -> None:
    if session.get_bind().dialect.name != "postgresql":
        async with reused_plans(session, BULK):  # nothing to change on SQLite
            assert (await session.connection()).dialect.name == "sqlite"
        return
    assert await plan_cache_mode(session) == "force_custom_plan"
    async with reused_plans(session, BULK):
        assert await plan_cache_mode(session) == "auto"
    assert await plan_cache_mode(session) == "force_custom_plan"
    # A small write plans its few checks again rather than spend two statements on it.
    async with reused_plans(session, BULK - 1):
        assert await plan_cache_mode(session) == "force_custom_plan"


@pytest.mark.parametrize(
    "engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_failure_within_reused_plans_leaves_custom_plans_after_rollback(
    session: AsyncSession,
) -> None:
    savepoint = await session.begin_nested()
    connection = await session.connection()

    async def fail_within() -> None:
        async with reused_plans(session, BULK):
            await connection.execute(sa.text("SELECT 1 / 0"))

    with pytest.raises(DBAPIError):
        await fail_within()
    await savepoint.rollback()
    assert await plan_cache_mode(session) == "force_custom_plan"


# Reads outside a transaction, and pings only for connections that idled (PostgreSQL).

ON_POSTGRES = pytest.mark.parametrize(
    "engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
async def databases(engine: AsyncEngine) -> AsyncIterator[Callable[..., Database]]:
    """Databases of their own on the test server's database, disposed of after the test."""
    made: list[Database] = []

    def make(**kwargs: Any) -> Database:
        made.append(Database.from_url(_url(engine), **kwargs))
        return made[-1]

    yield make
    for database in made:
        await database.dispose()


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    """End a backend, as a restart, an administrator or a proxy's timeout would."""
    async with engine.connect() as admin:
        await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await admin.commit()


async def _scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await (await session.connection()).execute(sa.text(sql), params)).scalar_one()


# How long ago the current statement's transaction began, when the statement did.
TRANSACTION_AGE = (
    "SELECT extract(epoch FROM query_start - xact_start) FROM pg_stat_activity"
    " WHERE pid = pg_backend_pid()"
)
PAUSE = 0.2


@ON_POSTGRES
async def test_reading_runs_each_statement_in_a_transaction_of_its_own(
    databases: Callable[..., Database],
) -> None:
    database = databases()
    async with database.reading() as session:
        await _scalar(session, "SELECT 1")
        await asyncio.sleep(PAUSE)
        assert await _scalar(session, TRANSACTION_AGE) < PAUSE / 2
    # A transaction's second statement runs in the transaction its first began.
    async with database.transaction() as session:
        await _scalar(session, "SELECT 1")
        await asyncio.sleep(PAUSE)
        assert await _scalar(session, TRANSACTION_AGE) >= PAUSE


@ON_POSTGRES
async def test_the_pool_is_sized_by_the_settings_and_a_request_past_it_waits(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No overflow connections by default: a checkout past the pool waits for a connection
    to come back rather than open a cold one."""
    monkeypatch.setenv("OKR_SYNC_DATABASE_POOL_SIZE", "2")
    database = Database.from_settings(Settings(data_dir=tmp_path, database_url=_url(engine)))
    backend = "SELECT pg_backend_pid()"
    try:
        async with database.reading() as one, database.reading() as two:
            held = {await _scalar(one, backend), await _scalar(two, backend)}

            async def third() -> int:
                async with database.reading() as session:
                    pid: int = await _scalar(session, backend)
                    return pid

            waiting = asyncio.create_task(third())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # no third connection was opened
        assert await waiting in held  # it got one of the two once they came back
    finally:
        await database.dispose()


def test_sqlite_takes_no_pool_size(tmp_path: Path) -> None:
    """The pool settings are PostgreSQL's: an in-memory SQLite's single connection takes
    none (its pool refuses them)."""
    memory = Settings(data_dir=tmp_path, database_url="sqlite:///:memory:")
    assert Database.from_settings(memory).engine.dialect.name == "sqlite"


@ON_POSTGRES
async def test_only_a_connection_that_idled_is_pinged_and_a_dropped_one_is_replaced(
    engine: AsyncEngine, databases: Callable[..., Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[Any] = []
    ping = db._ping
    monkeypatch.setattr(
        db, "_ping", lambda connection: (pings.append(connection), ping(connection))
    )
    database = databases(pool_size=1, max_overflow=0)
    backend = "SELECT pg_backend_pid()"
    async with database.reading() as session:
        first = await _scalar(session, backend)
    async with database.transaction() as session:  # back in the pool a moment ago
        assert await _scalar(session, backend) == first
    assert pings == []

    # Dropped while idle (a restart, an administrator, a proxy's timeout), then idle
    # past the limit: the ping finds it gone, and the pool connects anew.
    await _terminate(engine, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)
    async with database.reading() as session:
        replaced = await _scalar(session, backend)
    assert len(pings) == 1
    assert replaced != first


@ON_POSTGRES
async def test_a_prepared_select_runs_as_text_from_its_second_run_with_the_same_rows(
    databases: Callable[..., Database],
) -> None:
    database = databases()
    compiled_runs: list[bool] = []

    @sa.event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def _ran(*args: Any) -> None:
        context = args[4]
        compiled_runs.append(context.compiled is not None)

    plain = db.Prepared(
        sa.select(
            sa.cast(sa.bindparam("day"), sa.Date).label("day"),
            sa.cast(sa.bindparam("id"), sa.Uuid).label("id"),
            sa.literal_column("'a'").label("text"),
        ).limit(1)
    )
    # Numeric as float: SQLAlchemy converts the driver's Decimal, so this one never runs as text.
    converted = db.Prepared(
        sa.select(sa.cast(sa.bindparam("x"), sa.Numeric(10, 2, asdecimal=False)).label("x"))
    )
    params = {"day": date(2026, 12, 6), "id": uuid.uuid4()}
    async with database.reading() as session:
        first = await db.fetch_rows(session, plain, params)
        second = await db.fetch_rows(session, plain, params)
        assert [tuple(r) for r in second] == [tuple(r) for r in first]
        assert [tuple(r) for r in first] == [(params["day"], params["id"], "a")]
        assert second[0].day == params["day"]  # named as through SQLAlchemy
        assert compiled_runs == [True, False]

        compiled_runs.clear()
        for _ in range(2):
            (value,) = (await db.fetch_rows(session, converted, {"x": 1.5}))[0]
            assert value == 1.5
            assert type(value) is float
        assert compiled_runs == [True, True]


@ON_POSTGRES
async def test_with_no_cursor_listener_a_prepared_select_runs_on_the_driver_in_the_transaction(
    databases: Callable[..., Database],
) -> None:
    database = databases()
    xid = db.Prepared(sa.select(sa.func.txid_current().label("xid")))
    numbers = db.Prepared(
        sa.select(sa.func.generate_series(1, sa.bindparam("n", type_=sa.Integer)).label("n"))
    )
    async with database.transaction() as session:
        through_sqlalchemy = await db.fetch_rows(session, numbers, {"n": 3})
        await db.fetch_rows(session, xid)  # learnt: the next run is the driver's
    async with database.transaction() as session:
        # The first statement of this transaction: it must begin it, or the next one
        # would run in a transaction of its own (another id).
        (first,) = await db.fetch_rows(session, xid)
        assert await _scalar(session, "SELECT txid_current()") == first[0]
        rows = await db.fetch_rows(session, numbers, {"n": 3})
    assert type(rows[0]).__module__.startswith("asyncpg")
    assert [tuple(r) for r in rows] == [tuple(r) for r in through_sqlalchemy] == [
        (1,), (2,), (3,)
    ]  # fmt: skip
    async with database.reading() as session:  # no transaction: each its own
        (one,) = await db.fetch_rows(session, xid)
        (two,) = await db.fetch_rows(session, xid)
    assert one[0] != two[0]


@ON_POSTGRES
async def test_statements_run_on_the_connection_of_the_sessions_transaction_of_the_time(
    databases: Callable[..., Database],
) -> None:
    database = databases()
    xid = db.Prepared(sa.select(sa.func.txid_current().label("xid")))
    async with database.sessionmaker() as session:
        first = await db.connection_of(session)
        assert first is await session.connection()
        assert await db.connection_of(session) is first
        await db.fetch_rows(session, xid)  # learnt: the next run is the driver's
        ((before,),) = await db.fetch_rows(session, xid)
        assert await _scalar(session, "SELECT txid_current()") == before
        # Each end of a transaction hands the connection back; the next statement begins
        # another on the connection the session holds then, not on the one it let go.
        for end in (session.commit, session.rollback):
            await end()
            ((after,),) = await db.fetch_rows(session, xid)
            assert after != before
            assert await db.connection_of(session) is await session.connection()
            assert await _scalar(session, "SELECT txid_current()") == after
            before = after


@ON_POSTGRES
async def test_a_statement_runs_on_the_driver_after_pending_changes_and_fails_as_through_it(
    databases: Callable[..., Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``db.run``: a write built once runs as text on the driver, in the session's
    transaction, after the changes the session holds, its parameters converted as
    SQLAlchemy converts them (UTCDateTime here); a failure is SQLAlchemy's error."""
    tokens = table_of(ApiToken)
    rename = db.Statement(
        sa.update(tokens)
        .where(tokens.c.id == sa.bindparam("id"))
        .values(name=sa.bindparam("name"), last_used_at=sa.bindparam("when"))
    )
    copy = db.Statement(
        sa.insert(tokens).from_select(
            ["id", "name", "scope", "token_hash", "prefix", "created_at"],
            sa.select(
                sa.bindparam("new_id", type_=sa.Uuid()), tokens.c.name, tokens.c.scope,
                tokens.c.token_hash, tokens.c.prefix, tokens.c.created_at,
            ).where(tokens.c.id == sa.bindparam("id")),
        )
    )  # fmt: skip
    when = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    database = databases()

    async def through_sqlalchemy(*_: Any) -> None:
        raise AssertionError("ran through SQLAlchemy's execution layer")

    async with database.sessionmaker() as session:
        token = ApiToken(name="t", scope="read", token_hash=uuid.uuid4().hex, prefix="okr_t")
        session.add(token)  # pending: flushed before the statement runs
        with monkeypatch.context() as patched:
            patched.setattr(db, "execute", through_sqlalchemy)
            await db.run(session, rename, {"id": token.id, "name": "renamed", "when": when})
        row = await session.exec(
            sa.select(tokens.c.name, tokens.c.last_used_at).where(tokens.c.id == token.id)
        )
        assert tuple(row.one()) == ("renamed", when)
        # The same token hash again: the unique index refuses it, as it would through SQLAlchemy.
        with pytest.raises(IntegrityError, match="uq_api_tokens_token_hash|token_hash"):
            await db.run(session, copy, {"new_id": uuid.uuid4(), "id": token.id})
        await session.rollback()


@ON_POSTGRES
async def test_a_prepared_select_on_the_driver_fails_as_through_sqlalchemy(
    engine: AsyncEngine, databases: Callable[..., Database]
) -> None:
    database = databases()
    divided = db.Prepared(sa.select(sa.literal(1) / sa.bindparam("d", type_=sa.Integer)))
    async with database.reading() as session:
        await db.fetch_rows(session, divided, {"d": 1})
        with pytest.raises(DBAPIError) as through_sqlalchemy:
            await db.execute(session, divided.statement, {"d": 0})
        with pytest.raises(DBAPIError) as on_the_driver:
            await db.fetch_rows(session, divided, {"d": 0})
    assert type(on_the_driver.value) is type(through_sqlalchemy.value)
    assert "division by zero" in str(on_the_driver.value)

    # A connection that died under a statement is dropped, not handed out again.
    database = databases(pool_size=1, max_overflow=0)
    pid = db.Prepared(sa.select(sa.func.pg_backend_pid().label("pid")))
    async with database.reading() as session:
        await db.fetch_rows(session, pid)
        ((first,),) = await db.fetch_rows(session, pid)
    await _terminate(engine, first)
    async with database.reading() as session:
        with pytest.raises(DBAPIError) as dropped:
            await db.fetch_rows(session, pid)
    assert dropped.value.connection_invalidated
    async with database.reading() as session:
        ((replaced,),) = await db.fetch_rows(session, pid)
    assert replaced != first


@ON_POSTGRES
async def test_timestamps_come_back_in_utc_whatever_the_session_time_zone(
    session: AsyncSession,
) -> None:
    # UTCDateTime leaves PostgreSQL's values as the driver returns them (no result processing).
    connection = await session.connection()
    await connection.execute(sa.text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
    at = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    stmt = sa.select(sa.cast(sa.bindparam("at", type_=UTCDateTime()), UTCDateTime()))
    (read,) = (await connection.execute(stmt, {"at": at})).one()
    assert read == at
    assert read.tzinfo is UTC
