from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import create_engine
from service.migrate import alembic_config, upgrade
from service.models import metadata
from tests.conftest import fresh_postgres_database


def _diff(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _downgrade_to_base(connection: sa.Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


class TestMigrations:
    async def test_models_and_migrations_agree(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
        assert diff == []

    @pytest.mark.parametrize(
        "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    )
    async def test_downgrade_to_base_and_upgrade_again(self, backend: str, tmp_path: Any) -> None:
        drop = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'm.db'}"
        else:
            url, drop = await fresh_postgres_database()
        engine = create_engine(url)
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                await conn.run_sync(_downgrade_to_base)
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert set(tables) <= {"alembic_version"}
            await upgrade(engine)
            async with engine.connect() as conn:
                assert await conn.run_sync(_diff) == []
        finally:
            await engine.dispose()
            if drop is not None:
                await drop()
