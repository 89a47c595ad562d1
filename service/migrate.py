"""Apply the Alembic migrations, from the CLI, at server start, or in tests."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

# Any constant: replicas starting together take turns instead of racing to create tables.
_MIGRATION_LOCK_ID = 0x6F6B7273


def migrations_dir() -> Path:
    """The migrations folder: packaged inside ``service`` in a wheel, beside it in a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_migrations"
    return packaged if packaged.is_dir() else here.parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def _upgrade(connection: sa.Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database up to ``revision`` in one transaction."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
