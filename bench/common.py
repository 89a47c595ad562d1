"""What the benchmarks share: ports, fresh databases, the machine's description."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from service.db import create_engine

POSTGRES_ADMIN = os.environ.get(
    "OKR_SYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def machine() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )


async def _admin(statement: str) -> None:
    engine = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def create_postgres_database() -> tuple[str, str]:
    """A new empty database on the test server: (its URL, its name)."""
    name = f"okr_sync_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN).set(database=name).render_as_string(False)
    return url, name


def drop_postgres_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
