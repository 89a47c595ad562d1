"""The catalog a process keeps (service.catalog): its token changes with every write to the
tables it is read from, so a roll-up never shows what it kept past a change."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service import catalog
from service.db import Database
from service.models import CatalogVersion, CheckIn, KeyResult, Link, Objective, Period, Team
from service.models.base import table_of
from tests import factories
from tests.portfolio.world import build, link, rollup
from tests.tracker import FakeTracker


async def _token(session: AsyncSession) -> str:
    token: str = (await session.exec(sa.select(CatalogVersion.token))).scalar_one()
    return token


def _key_results(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The roll-up's KRs by title, each with its objective's labels beside it."""
    return {
        kr["title"]: {**kr, "objective": o["title"], "period": o["period"], "team": o["team"]}
        for o in body["objectives"]
        for kr in o["key_results"]
    }


class TestToken:
    async def test_every_write_to_a_catalog_table_replaces_it(self, session: AsyncSession) -> None:
        team, period, objective, kr = (uuid.uuid4() for _ in range(4))
        now = datetime(2026, 12, 7, tzinfo=UTC)
        stamps = {"created_at": now, "updated_at": now}
        teams, periods, objectives, krs, check_ins = (
            table_of(m) for m in (Team, Period, Objective, KeyResult, CheckIn)
        )
        writes: list[Any] = [
            sa.insert(teams).values(id=team, key="ops", name="Ops", **stamps),
            sa.update(teams).where(teams.c.id == team).values(name="Operations"),
            sa.insert(periods).values(id=period, name="Q1", start=date(2027, 1, 1),
                                      end=date(2027, 4, 1), **stamps),
            sa.update(periods).where(periods.c.id == period).values(name="Q1-27"),
            sa.insert(objectives).values(id=objective, title="Calm", description="",
                                         period_id=period, team_id=team, **stamps),
            sa.update(objectives).where(objectives.c.id == objective).values(title="Calmer"),
            sa.insert(krs).values(id=kr, objective_id=objective, title="Pages", start_value=0,
                                  target_value=10, current_value=0, unit="",
                                  progress_mode="manual", progress_basis="count", **stamps),
            sa.update(krs).where(krs.c.id == kr).values(title="Fewer pages"),
            sa.insert(check_ins).values(id=kr, key_result_id=kr, value=4, note="",
                                        created_at=now),
            sa.update(check_ins).where(check_ins.c.id == kr).values(value=5),
            sa.delete(check_ins).where(check_ins.c.id == kr),
            sa.delete(krs).where(krs.c.id == kr),
            sa.delete(objectives).where(objectives.c.id == objective),
            sa.delete(periods).where(periods.c.id == period),
            sa.delete(teams).where(teams.c.id == team),
        ]  # fmt: skip
        seen = {await _token(session)}
        for write in writes:
            await session.exec(write)
            token = await _token(session)
            assert token not in seen, str(write)
            seen.add(token)
        # A write to any other table leaves it.
        await session.exec(sa.delete(table_of(Link)))
        assert await _token(session) == token

    async def test_emptying_a_table_replaces_it(self, session: AsyncSession) -> None:
        """PostgreSQL's TRUNCATE fires no row event, and SQLite empties a table without
        visiting its rows unless a trigger asks for them."""
        postgres = session.get_bind().dialect.name == "postgresql"
        now = datetime(2026, 12, 7, tzinfo=UTC)
        await session.exec(
            sa.insert(table_of(Team)).values(
                id=uuid.uuid4(), key="ops", name="Ops", created_at=now, updated_at=now
            )
        )
        before = await _token(session)
        await session.exec(sa.text("TRUNCATE teams CASCADE" if postgres else "DELETE FROM teams"))
        assert await _token(session) != before

    async def test_a_write_rolled_back_leaves_no_token_to_be_handed_out_again(
        self, session: AsyncSession
    ) -> None:
        """A process may have kept the catalog as that write left it: a counter would give
        the next write the same token for other contents, and the process would keep them."""
        teams = table_of(Team)
        before = await _token(session)
        now = datetime(2026, 12, 7, tzinfo=UTC)
        await session.exec(
            sa.insert(teams).values(
                id=uuid.uuid4(), key="ops", name="Ops", created_at=now, updated_at=now
            )
        )
        after_insert = await _token(session)
        rename = sa.update(teams).values(name=teams.c.name + "!")
        async with session.begin_nested() as savepoint:
            await session.exec(rename)
            rolled_back = await _token(session)
            await savepoint.rollback()
        assert await _token(session) == after_insert != before
        await session.exec(rename)
        assert await _token(session) not in {rolled_back, after_insert, before}


class TestOfferedToken:
    """A request's API token is read with the catalog's token beside it, and a request that
    only reads takes that one instead of a round trip of its own."""

    async def test_a_roll_up_reads_the_token_once_beside_its_grant(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["revenue"], "PAY-E1")
        await rollup(admin)  # the catalog kept
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        engine = database.engine.sync_engine
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            body = await rollup(admin)
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert body["objectives"]
        reading = [s for s in statements if "catalog_version" in s]
        assert len(reading) == 1, statements
        assert "api_tokens" in reading[0]

    async def test_it_serves_once_and_only_a_session_that_reads(
        self, database: Database, session: AsyncSession
    ) -> None:
        real = await _token(session)
        async with database.reading() as reads:
            catalog.offer_token(reads, "offered")
            assert (await catalog.current(reads)).token == "offered"
            # The fallbacks of team_named and period_named read anew.
            assert (await catalog.current(reads)).token == real
        async with database.transaction() as writes:
            catalog.offer_token(writes, "offered")
            assert (await catalog.current(writes)).token == real


class TestRollUpsFollowTheCatalog:
    async def test_labels_and_progress_changed_between_roll_ups_show_in_the_next(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        revenue, conversion = world.krs["revenue"], world.krs["conversion"]
        await link(admin, revenue, "PAY-E1")
        await link(admin, conversion, "PLT-E2")
        first = _key_results(await rollup(admin))
        assert first["Revenue 10M"]["objective"] == "Grow revenue"
        assert first["Conversion +2pt"]["progress"] == 0.0

        patched = [
            admin.patch(f"/v1/key-results/{revenue['id']}", json={"title": "Revenue 12M"}),
            admin.patch(f"/v1/objectives/{world.objectives['grow']['id']}",
                        json={"title": "Grow faster", "team": "platform"}),
            admin.post(f"/v1/key-results/{conversion['id']}/check-ins", json={"value": 25}),
        ]  # fmt: skip
        for request in patched:
            response = await request
            assert response.status_code in {200, 201}, response.text
        after = _key_results(await rollup(admin))
        assert set(after) == {"Revenue 12M", "Conversion +2pt"}
        assert (after["Revenue 12M"]["objective"], after["Revenue 12M"]["team"]) == (
            "Grow faster", "platform"
        )  # fmt: skip
        assert after["Conversion +2pt"]["progress"] == 0.25

        # Linked now: its progress comes from its work (PLT-t1 and t2, both done).
        switched = await admin.patch(
            f"/v1/key-results/{conversion['id']}", json={"progress_mode": "linked"}
        )
        assert switched.status_code == 200, switched.text
        assert _key_results(await rollup(admin))["Conversion +2pt"]["progress"] == 1.0

    async def test_each_key_results_progress_is_what_it_answers_alone(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        """Manual with and without check-ins, linked on points and counts: a roll-up reads
        them in bulk, and must agree with each KR's own answer."""
        world = await build(admin, tracker)
        pay = world.objectives["pay"]["id"]
        points = await factories.key_result(
            admin, pay, progress_mode="linked", progress_basis="points"
        )
        counts = await factories.key_result(admin, pay, progress_mode="linked")
        manual = await factories.key_result(admin, pay, target_value=10, current_value=1)
        checked = await factories.key_result(admin, pay, target_value=10, current_value=1)
        await admin.post(f"/v1/key-results/{checked['id']}/check-ins", json={"value": 4})
        for kr, key in ((points, "PAY-E1"), (counts, "PAY-E1"), (manual, "PLT-E2"),
                        (checked, "PLT-E2")):  # fmt: skip
            await link(admin, kr, key)
        shown = {kr["id"]: kr["progress"] for kr in _key_results(await rollup(admin)).values()}
        alone = {
            kr["id"]: (await admin.get(f"/v1/key-results/{kr['id']}")).json()["progress"]
            for kr in (points, counts, manual, checked)
        }
        assert {k: shown[k] for k in alone} == pytest.approx(alone)
        assert len(set(alone.values())) == 4  # the cases differ, so a mix-up would show
