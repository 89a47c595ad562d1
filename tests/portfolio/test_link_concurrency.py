"""Link changes side by side on PostgreSQL: no deadlock, and the derived state they leave is
what the links add up to. Changes in different trees run together; in one tree they take
turns."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from service.db import Database
from service.derived import efforts
from service.links import service as links
from service.links.schemas import LinkCreate
from service.migrate import upgrade
from service.models import Connection, KeyResult, Objective, Period, WorkItem
from service.rollups import cells
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.postgres

EPICS, CHILDREN, KRS = 8, 6, 4


async def _seed(database: Database) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Epics, each with children done in the period, one of them under another epic (a
    tree of two), and a few KRs for all of them to share."""
    now = datetime(2026, 11, 2, tzinfo=UTC)
    async with database.transaction() as session:
        connection = Connection(provider="jira", name="c", config={}, credentials_encrypted="x")
        period = Period(name="2026-Q4", start=now.date().replace(month=10, day=1),
                        end=now.date().replace(year=2027, month=1, day=1))  # fmt: skip
        session.add_all([connection, period])
        await session.flush()
        objective = Objective(title="o", period_id=period.id)
        session.add(objective)
        await session.flush()
        krs = [KeyResult(objective_id=objective.id, title=f"kr{n}", target_value=1,
                         progress_mode="linked") for n in range(KRS)]  # fmt: skip
        session.add_all(krs)
        epics: list[WorkItem] = []
        for n in range(EPICS):
            epic = WorkItem(
                connection_id=connection.id, external_id=f"E{n}", key=f"E-{n}", kind="epic",
                status_category="in_progress", created_at=now, updated_at=now, is_leaf=False,
                parent_id=epics[0].id if n == EPICS - 1 else None,
            )  # fmt: skip
            session.add(epic)
            await session.flush()
            epics.append(epic)
            for c in range(CHILDREN):
                session.add(
                    WorkItem(
                        connection_id=connection.id, external_id=f"E{n}-{c}", key=f"S-{n}-{c}",
                        kind="issue", status_category="done" if c % 2 else "todo",
                        created_at=now, updated_at=now, resolved_at=now if c % 2 else None,
                        estimate=float(c), parent_id=epic.id,
                    )
                )  # fmt: skip
    return [e.id for e in epics], [kr.id for kr in krs]


async def _effort_rows(database: Database) -> list[Any]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            sa.text("SELECT * FROM key_result_efforts ORDER BY key_result_id")
        )  # type: ignore[call-overload]
        return [tuple(row) for row in rows.all()]


async def test_link_changes_side_by_side_neither_deadlock_nor_lose_a_change() -> None:
    url, drop = await fresh_postgres_database()
    database = Database.from_url(url)
    try:
        await upgrade(database.engine)
        epics, krs = await _seed(database)
        linked: dict[uuid.UUID, set[uuid.UUID]] = {epic: set() for epic in epics}

        async def change(epic: uuid.UUID, rng: random.Random) -> None:
            # Link the epic to two more of the shared KRs, in an order of its own, then
            # unlink the first of them.
            chosen = rng.sample(sorted(set(krs) - linked[epic]), 2)
            ids = []
            for kr in chosen:
                async with database.transaction() as session:
                    body = LinkCreate(key_result_id=kr, work_item_id=epic)
                    ids.append((await links.create(session=session, data=body)).id)
            async with database.transaction() as session:
                await links.delete(session=session, link_id=ids[0])
            linked[epic].add(chosen[1])

        for round_ in range(KRS // 2):
            rng = random.Random(round_)
            await asyncio.gather(*(change(epic, random.Random(rng.random())) for epic in epics))
        async with database.sessionmaker() as session:
            assert await cells.drift(session) == []
        stored = await _effort_rows(database)
        async with database.transaction() as session:
            await efforts.recompute(session, krs)
        assert stored == await _effort_rows(database)
        assert stored, "the links left effort on the KRs"
    finally:
        await database.dispose()
        await drop()
