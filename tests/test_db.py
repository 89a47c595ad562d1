"""Engine and session helpers of service.db."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import REUSED_PLANS_FROM, reused_plans

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
