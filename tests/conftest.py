"""Fixtures: migrated databases on SQLite and PostgreSQL, a rolled-back transaction per test,
and the app driven through ``httpx.ASGITransport``.

PostgreSQL tests skip when the server is not reachable, unless ``OKR_SYNC_REQUIRE_SERVICES=1``
(as CI sets), which turns that into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from service.app import create_app
from service.auth import service as auth
from service.auth.scopes import Scope
from service.db import Database, create_engine, sessions_for
from service.migrate import upgrade
from service.settings import Settings
from service.worker.inprocess import InProcessQueue

POSTGRES_URL = os.environ.get(
    "OKR_SYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("OKR_SYNC_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip for want of a service, or fail when CI requires the services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (OKR_SYNC_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


async def _admin_engine() -> AsyncEngine:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await engine.dispose()
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return engine


async def fresh_postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new, empty database on the test server, and a function that drops it."""
    admin = await _admin_engine()
    name = f"okr_sync_test_{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(False)

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A database migrated by Alembic, one per backend for the whole run."""
    drop: Callable[[], Awaitable[None]] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url, drop = await fresh_postgres_database()
    engine = create_engine(url)
    await upgrade(engine)
    yield engine
    await engine.dispose()
    if drop is not None:
        await drop()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection in a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture
def database(connection: AsyncConnection) -> Database:
    """A Database whose sessions work inside the test's transaction, committing to savepoints."""
    sessionmaker = sessions_for(connection, join_transaction_mode="create_savepoint")
    return Database(engine=connection.engine, sessionmaker=sessionmaker)


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessionmaker() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url="sqlite:///unused-in-api-tests.db")


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[Any]:
    """The app, started, with jobs run to their end as soon as their request commits."""
    application = create_app(settings, database=database, queue=InProcessQueue(eager=True))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def tokens(database: Database) -> dict[Scope, str]:
    """One live token per scope."""
    made: dict[Scope, str] = {}
    async with database.transaction() as s:
        for scope in Scope:
            _, made[scope] = await auth.create(session=s, name=f"test {scope}", scope=scope)
    return made


@pytest.fixture
async def anonymous(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://okr-sync.test") as c:
        yield c


def with_token(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=client._transport,
        base_url=client.base_url,
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def client(anonymous: httpx.AsyncClient, tokens: dict[Scope, str]) -> AsyncIterator[Any]:
    """An API client holding a write token: what a delivery lead or PMO tool would have."""
    async with with_token(anonymous, tokens[Scope.write]) as c:
        yield c


@pytest.fixture
async def admin(anonymous: httpx.AsyncClient, tokens: dict[Scope, str]) -> AsyncIterator[Any]:
    async with with_token(anonymous, tokens[Scope.admin]) as c:
        yield c


@pytest.fixture
async def reader(anonymous: httpx.AsyncClient, tokens: dict[Scope, str]) -> AsyncIterator[Any]:
    async with with_token(anonymous, tokens[Scope.read]) as c:
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of the given status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


REDIS_URL = os.environ.get("OKR_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """The test Redis, checked reachable (or skipped, or failed when services are required)."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, ConnectionError) as exc:
        unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
    except Exception as exc:  # redis-py wraps socket errors in its own tree
        unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL
