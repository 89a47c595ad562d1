"""What a link change writes, read back from the tables: the subtree it recomputes (a parent
cycle in provider data included) and the KRs' stored effort."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import select

from connectors import WorkItem as Item
from service.db import Database
from service.derived import efforts
from service.links import service as links
from service.links.schemas import LinkCreate
from service.models import Connection, KeyResult, KeyResultEffort, Objective, Period, WorkItem
from service.sync import store

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


async def setup(database: Database, *pages: list[Item]) -> uuid.UUID:
    """A connection with ``pages`` stored one after another, and a KR to link to: its id."""
    async with database.transaction() as session:
        connection = Connection(provider="jira", name="links", credentials_encrypted="x")
        period = Period(name="2026-Q4", start=date(2026, 10, 1), end=date(2027, 1, 1))
        session.add_all([connection, period])
        await session.flush()
        objective = Objective(title="Grow", period_id=period.id)
        session.add(objective)
        await session.flush()
        kr = KeyResult(objective_id=objective.id, title="Revenue", target_value=1)
        session.add(kr)
        await session.flush()
        for page in pages:
            await store.store_items(session, connection.id, page, now=NOW, run_id=None)
        return kr.id


def item(external_id: str, parent: str | None, **fields: object) -> Item:
    given: dict[str, object] = {"kind": "issue", "status_category": "done", **fields}
    return Item(
        external_id=external_id, key=f"X-{external_id}", parent_external_id=parent,
        created_at=NOW, updated_at=NOW, resolved_at=NOW, **given,
    )  # fmt: skip


async def states(database: Database) -> dict[str, tuple[str | None, str | None]]:
    """Each item's category and the key of the item that decided it."""
    async with database.sessionmaker() as session:
        rows = (await session.exec(select(WorkItem))).all()
    keys = {row.id: row.key for row in rows}
    return {
        row.key: (
            row.category,
            keys.get(row.decided_by_item_id) if row.decided_by_item_id else None,
        )
        for row in rows
    }


async def stored_effort(database: Database, kr: uuid.UUID) -> tuple[float, ...] | None:
    async with database.sessionmaker() as session:
        row = await session.get(KeyResultEffort, kr)
        return None if row is None else (row.done_count, row.all_count, row.all_points)


async def test_linking_an_item_in_a_parent_cycle_breaks_it_where_it_closes(
    database: Database,
) -> None:
    """A and B name each other as parent (a page breaks a cycle within it, so this one
    closes across two pages: B moves below A later); C hangs below A. Reading the linked
    item's subtree must end (on PostgreSQL one recursive query, elsewhere level by level),
    and both must break the cycle where it closes, at the linked item: the other member
    inherits nothing, though it may be read first (linked here: the member with the larger
    id, as rows come in id order), and C inherits whatever A does."""
    kr = await setup(
        database,
        [item("A", "B"), item("B", None), item("C", "A", estimate=3)],
        [item("B", "A")],
    )
    async with database.sessionmaker() as session:
        rows = (await session.exec(select(WorkItem))).all()
    parents = {row.key: row.parent_id for row in rows}
    ids = {row.key: row.id for row in rows}
    assert (parents["X-A"], parents["X-B"]) == (ids["X-B"], ids["X-A"])  # a cycle indeed
    linked, other = sorted(("X-A", "X-B"), key=lambda key: ids[key], reverse=True)
    async with database.transaction() as session:
        await links.create(session=session, data=LinkCreate(key_result_id=kr, work_item_key=linked))
    found = await states(database)
    assert found[other] == (None, None)
    assert found["X-C"] == found["X-A"]
    # C is the one leaf: it counts toward the KR if it inherits the link.
    effort = (1.0, 1.0, 3.0) if found["X-C"][0] == "strategic" else None
    assert await stored_effort(database, kr) == effort


async def test_a_key_results_effort_row_is_rewritten_only_when_it_moves_and_goes_with_it(
    database: Database,
) -> None:
    kr = await setup(database, [item("E", None, kind="epic"), item("S", "E", estimate=5)])
    async with database.transaction() as session:
        made = await links.create(
            session=session, data=LinkCreate(key_result_id=kr, work_item_key="X-E")
        )
    assert await stored_effort(database, kr) == (1.0, 1.0, 5.0)

    postgres = database.engine.dialect.name == "postgresql"
    version = sa.text("SELECT xmin::text FROM key_result_efforts WHERE key_result_id = :kr")
    async with database.transaction() as session:
        before = await session.scalar(version.bindparams(kr=kr)) if postgres else None
        await efforts.recompute(session, [kr])
        after = await session.scalar(version.bindparams(kr=kr)) if postgres else None
    # Nothing moved, so PostgreSQL's upsert leaves the row as it was (no new row version).
    assert after == before
    assert await stored_effort(database, kr) == (1.0, 1.0, 5.0)

    async with database.transaction() as session:
        await links.delete(session=session, link_id=made.id)
    # The KR's last leaf went with the link: so does its row.
    assert await stored_effort(database, kr) is None
