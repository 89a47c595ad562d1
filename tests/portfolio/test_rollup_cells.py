"""The monthly roll-up cells: the database's triggers keep them equal to the leaves through
every kind of write, compaction keeps their sums, and a check finds and repairs hand edits.
(The property test checks them after every random scenario too.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.db import Database
from service.links import service as links
from service.links.schemas import LinkCreate
from service.migrate import upgrade
from service.models import Connection, WorkItem
from service.rollups import cells
from tests.conftest import fresh_postgres_database
from tests.portfolio.world import build, efforts, link, rollup
from tests.tracker import FakeTracker


async def drift(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        return await cells.drift(session)


async def rows_per_key(database: Database) -> dict[str, int]:
    """The most rows any one key has, per cell table."""
    found = {}
    async with database.sessionmaker() as session:
        for table, key in (
            ("rollup_cells", "month, state, team_id, category"),
            ("source_cells", "month, state, team_id, source_id"),
        ):
            most = await session.exec(
                sa.text(f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table} GROUP BY {key}) x")
            )  # type: ignore[call-overload]
            found[table] = most.scalar_one() or 0
    return found


class TestCellsFollowEveryWrite:
    async def test_syncs_links_and_rules_leave_them_equal_to_the_leaves(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1", weight=2)
        await link(admin, world.krs["revenue"], "PAY-E1")
        rule = {"match": {"labels": ["debt"]}, "category": "improvement", "priority": 1}
        assert (await admin.post("/v1/classification-rules", json=rule)).status_code == 201
        tracker.touch("s1", state="open")  # done in October, open again
        tracker.touch("t1", points=5)  # an estimate arrives
        tracker.touch("b1", project="PLT")  # another team
        await world.resync(admin)
        assert await drift(database) == []
        body = await rollup(admin, basis="points")
        # PAY-s2 5 (s1 reopened, s3 next quarter, s4 canceled); then CHK-b1 1 now in
        # platform, PLT-t1 5, PLT-t2 2 (debt), PLT-x1 1.
        assert efforts(body) == {"strategic": 5.0, "improvement": 2.0, "heartbeat": 7.0}
        split = {kr["title"]: kr["effort"] for o in body["objectives"] for kr in o["key_results"]}
        assert split == pytest.approx({"Conversion +2pt": 5 * 2 / 3, "Revenue 10M": 5 / 3})

    async def test_deleting_a_connection_takes_its_leaves_out_of_every_cell(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1")
        assert (await rollup(admin))["total"] > 0
        response = await admin.delete(f"/v1/connections/{world.connection_id}")
        assert response.status_code == 204
        assert await drift(database) == []
        async with database.sessionmaker() as session:
            for table in ("rollup_cells", "source_cells"):
                left = await session.exec(sa.text(f"SELECT sum(leaves) FROM {table}"))  # type: ignore[call-overload]
                assert (left.scalar_one() or 0) == 0, table
        body = await rollup(admin)
        assert body["total"] == 0
        assert body["objectives"] == []

    async def test_deleting_a_team_moves_its_leaves_to_no_team(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        await build(admin, tracker)
        before = await rollup(admin)
        payments = (await rollup(admin, team="payments"))["total"]
        assert (await admin.delete("/v1/teams/checkout")).status_code == 204
        assert await drift(database) == []
        assert (await rollup(admin))["total"] == before["total"]
        # CHK-b1 belonged to checkout, under payments: it now has no team.
        assert (await rollup(admin, team="payments"))["total"] == payments - 1


async def key_result_efforts(admin: httpx.AsyncClient) -> dict[str, float]:
    body = await rollup(admin)
    return {kr["title"]: kr["effort"] for o in body["objectives"] for kr in o["key_results"]}


class TestRelinking:
    """A second link to an epic moves its descendants' shares of the first KR, and removing
    it moves them back, without writing a cell: the cells are the epic's, not its KRs'."""

    async def cells_after(self, database: Database, write: Any = None) -> list[tuple[Any, ...]]:
        """Every source cell row, after ``write(session)`` in a transaction of its own."""
        if write is not None:
            async with database.transaction() as session:
                await write(session)
        async with database.sessionmaker() as session:
            rows = await session.exec(sa.text("SELECT * FROM source_cells ORDER BY id"))  # type: ignore[call-overload]
            return [tuple(row) for row in rows]

    async def test_a_linked_epic_gets_a_second_key_result_and_loses_it_writing_no_cell(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1")
        alone = await key_result_efforts(admin)
        assert alone["Conversion +2pt"] > 0
        before = await self.cells_after(database)
        assert before  # the epic's leaves count toward it

        async def add(session: Any) -> None:
            await links.create(
                session=session,
                data=LinkCreate(key_result_id=world.krs["revenue"]["id"], work_item_key="PAY-E1"),
            )

        assert await self.cells_after(database, add) == before
        assert await drift(database) == []
        half = alone["Conversion +2pt"] / 2
        assert await key_result_efforts(admin) == pytest.approx(
            {"Conversion +2pt": half, "Revenue 10M": half}
        )

        made = (await admin.get("/v1/links", params={"work_item": "PAY-E1"})).json()["items"]
        revenue = next(m for m in made if m["key_result_id"] == world.krs["revenue"]["id"])

        async def remove(session: Any) -> None:
            await links.delete(session=session, link_id=uuid.UUID(revenue["id"]))

        assert await self.cells_after(database, remove) == before
        assert await drift(database) == []
        assert await key_result_efforts(admin) == pytest.approx(alone)


class TestCompaction:
    async def test_merges_each_keys_rows_into_one_and_keeps_every_sum(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1")
        await link(admin, world.krs["revenue"], "PLT-E2")
        # Writes that ask for no compaction (the API's writes ask for one once committed).
        async with database.sessionmaker() as session:
            for key in ("PAY-s1", "PAY-s2", "PAY-s1", "PLT-t2"):
                await session.exec(
                    sa.text(
                        "UPDATE work_items SET estimate = estimate + 1 WHERE key = :key"
                    ).bindparams(key=key)
                )  # type: ignore[call-overload]
            await session.commit()
        before = await rollup(admin, basis="points")
        assert before["total"] == 12 + 4  # s1 3+2, s2 5+1, b1 1, t1 none, t2 2+1, x1 1
        postgres = database.engine.dialect.name == "postgresql"
        # PostgreSQL appends a row per key and statement; SQLite updates its one row.
        most = await rows_per_key(database)
        assert (most["rollup_cells"] > 1 and most["source_cells"] > 1) == postgres
        async with database.sessionmaker() as session:
            merged = await cells.compact(session)
            await session.commit()
        assert (merged > 0) == postgres
        assert await rows_per_key(database) == {"rollup_cells": 1, "source_cells": 1}
        assert await drift(database) == []
        assert await rollup(admin, basis="points") == before


@pytest.mark.postgres
class TestCompactionInPlace:
    async def merged_rows(self, database: Database) -> dict[tuple[Any, ...], tuple[int, int]]:
        """Each key's merged rollup cell: (its id, its leaves)."""
        async with database.sessionmaker() as session:
            rows = await session.exec(
                sa.text(
                    "SELECT month, state, team_id, category, id, leaves FROM rollup_cells"
                    " WHERE NOT fresh"
                )
            )  # type: ignore[call-overload]
            return {tuple(row[:4]): (row[4], row[5]) for row in rows}

    async def compact(self, database: Database) -> int:
        async with database.transaction() as session:
            return await cells.compact(session)

    async def test_a_keys_merged_row_takes_the_sums_where_it_is(self) -> None:
        url, drop = await fresh_postgres_database()
        database = Database.from_url(url)
        try:
            await upgrade(database.engine)
            await _seed(database, 10)  # done 2026-11-02, one key
            assert await self.compact(database) > 0
            (key, (first_id, leaves)), *others = (await self.merged_rows(database)).items()
            assert (leaves, others) == (10, [])

            async def resolve(keys: str, when: str) -> None:
                async with database.transaction() as session:
                    await session.exec(
                        sa.text(
                            "UPDATE work_items SET resolved_at = CAST(:when AS timestamptz)"
                            " WHERE key LIKE :keys"
                        ).bindparams(keys=keys, when=when)
                    )  # type: ignore[call-overload]

            await resolve("K-1%", "2026-12-15T00:00:00Z")  # K-1 moves to December
            assert await self.compact(database) > 0
            merged = await self.merged_rows(database)
            # The same row, 9 leaves now; December's key gets a row of its own.
            assert merged.pop(key) == (first_id, 9)
            assert [leaves for _, leaves in merged.values()] == [1]
            # December comes to nothing again: its row goes.
            await resolve("K-1%", "2026-11-02T00:00:00Z")
            assert await self.compact(database) > 0
            assert await self.merged_rows(database) == {key: (first_id, 10)}
            async with database.sessionmaker() as session:
                assert await cells.drift(session) == []
        finally:
            await database.dispose()
            await drop()


async def _seed(database: Database, items: int) -> Any:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    async with database.transaction() as session:
        connection = Connection(provider="jira", name="c", config={}, credentials_encrypted="x")
        session.add(connection)
        await session.flush()
        for n in range(items):
            session.add(
                WorkItem(
                    connection_id=connection.id, external_id=str(n), key=f"K-{n}", kind="issue",
                    status_category="done", created_at=now, updated_at=now, resolved_at=now,
                    estimate=float(n % 5),
                )
            )  # fmt: skip
    return connection.id


@pytest.mark.postgres
class TestConcurrentWritersOnPostgres:
    async def test_compaction_while_others_write_loses_nothing(self) -> None:
        url, drop = await fresh_postgres_database()
        database = Database.from_url(url)
        try:
            await upgrade(database.engine)
            await _seed(database, 200)

            async def write(round_: int) -> None:
                # Each writer moves a different slice of items between months and back.
                async with database.transaction() as session:
                    await session.exec(
                        sa.text(
                            "UPDATE work_items SET estimate = coalesce(estimate, 0) + 1,"
                            " resolved_at = resolved_at + interval '31 days' * (:r % 2)"
                            " WHERE key LIKE :slice"
                        ).bindparams(r=round_, slice=f"K-{round_ % 7}%")
                    )  # type: ignore[call-overload]
                    await asyncio.sleep(0.01)  # hold the rows while compaction runs

            async def compact() -> int:
                async with database.transaction() as session:
                    return await cells.compact(session)

            for round_ in range(12):
                await asyncio.gather(write(round_), compact(), write(round_ + 100), compact())
            # While one compaction holds the lock, another steps aside.
            async with database.transaction() as holder:
                await holder.exec(
                    sa.text("SELECT pg_advisory_xact_lock(:id)").bindparams(id=cells.COMPACT_LOCK)
                )  # type: ignore[call-overload]
                await write(1)
                assert await compact() == 0
                assert (await rows_per_key(database))["rollup_cells"] > 1
            assert await compact() > 0
            async with database.sessionmaker() as session:
                assert await cells.drift(session) == []
            assert await rows_per_key(database) == {"rollup_cells": 1, "source_cells": 0}
        finally:
            await database.dispose()
            await drop()
