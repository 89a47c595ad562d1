"""Writing a page of items: derived state from the rows in hand, and writers of one
connection taking turns."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlmodel import col, select

from connectors import WorkItem as Item
from service.db import Database
from service.migrate import upgrade
from service.models import ClassificationRule, Connection, WorkItem
from service.models.base import UTCDateTime
from service.sync import repository, store
from tests.conftest import fresh_postgres_database

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def items(epic_labels: tuple[str, ...]) -> list[Item]:
    common: dict[str, Any] = {"status_category": "done", "created_at": NOW, "updated_at": NOW}
    return [
        # The child first: its parent is in the same page, later.
        Item(external_id="2", key="PAY-2", kind="issue", parent_external_id="1", **common),
        Item(external_id="1", key="PAY-1", kind="epic", labels=epic_labels, **common),
    ]


async def setup(database: Database) -> uuid.UUID:
    async with database.transaction() as session:
        connection = Connection(provider="jira", name="store", credentials_encrypted="x")
        rule = ClassificationRule(match={"labels": ["ops"]}, priority=1, category="heartbeat")
        session.add_all([connection, rule])
    return connection.id


async def put(database: Database, connection_id: uuid.UUID, page: list[Item]) -> dict[str, int]:
    async with database.transaction() as session:
        return await store.store_items(session, connection_id, page, now=NOW, run_id=None)


async def stored(database: Database, connection_id: uuid.UUID) -> dict[str, WorkItem]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            select(WorkItem).where(col(WorkItem.connection_id) == connection_id)
        )
        return {row.key: row for row in rows.all()}


async def test_a_page_gets_its_derived_state_from_the_rows_it_wrote(database: Database) -> None:
    connection_id = await setup(database)
    assert await put(database, connection_id, items(("ops",))) == {
        "fetched": 2, "created": 2, "updated": 0,
    }  # fmt: skip
    rows = await stored(database, connection_id)
    epic, story = rows["PAY-1"], rows["PAY-2"]
    assert story.parent_id == epic.id
    assert (epic.is_leaf, story.is_leaf) == (False, True)
    # The story inherits the epic's rule, as the item the rule matched.
    assert (story.category, story.decided_by_item_id) == ("heartbeat", epic.id)

    # Stored items change: their stored derived state is what the page is compared with.
    await put(database, connection_id, items(()))
    rows = await stored(database, connection_id)
    assert (rows["PAY-2"].category, rows["PAY-2"].decided_by_item_id) == (None, None)
    assert rows["PAY-1"].is_leaf is False


@pytest.mark.postgres
async def test_two_writers_of_one_connection_take_turns() -> None:
    url, drop = await fresh_postgres_database()
    database = Database.from_url(url)
    try:
        await upgrade(database.engine)
        connection_id = await setup(database)
        first_wrote = asyncio.Event()

        async def first() -> None:
            async with database.transaction() as session:
                await store.store_items(
                    session, connection_id, items(("ops",)), now=NOW, run_id=None
                )
                first_wrote.set()
                await asyncio.sleep(0.3)  # the second arrives while these rows are uncommitted

        async def second() -> dict[str, int]:
            await first_wrote.wait()
            return await put(database, connection_id, items(()))

        _, counts = await asyncio.gather(first(), second())
        # The second waited, then found the first's rows: it updated them under their ids.
        assert counts == {"fetched": 2, "created": 0, "updated": 0}
        rows = await stored(database, connection_id)
        assert len(rows) == 2
        assert rows["PAY-2"].parent_id == rows["PAY-1"].id
        assert (rows["PAY-2"].category, rows["PAY-2"].decided_by_item_id) == (None, None)
    finally:
        await database.dispose()
        await drop()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2025, 1, 1, 8, 0, 7, tzinfo=UTC),  # no microseconds: still written with them
        datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8))),
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a year below 1000 keeps four digits
    ],
)
def test_sqlite_timestamps_are_written_as_the_column_type_writes_them(moment: datetime) -> None:
    # The upsert formats timestamps itself for speed; what it writes must be what every other
    # query (through UTCDateTime's own bind processors) writes and compares against.
    dialect = sqlite.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)
    assert column_type.bind_processor(dialect)(moment) == repository.sqlite_time(moment)
    with pytest.raises(ValueError, match="naive"):
        repository.sqlite_time(moment.replace(tzinfo=None))
