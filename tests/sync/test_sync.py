"""The sync engine through the API, with a third-party connector installed from its
distribution, against a tracker served over respx."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from service.db import Database
from service.models import Connection, SyncRun, WorkItem
from service.sync import service as syncs
from service.sync.engine import SyncEngine
from service.worker.jobs import resume_interrupted_syncs, schedule_due_syncs
from tests import factories
from tests.conftest import assert_problem
from tests.sync.helpers import (
    WorkerKilled,
    connect,
    count_items,
    portfolio,
    queued_run,
    stored,
    sync,
)
from tests.tracker import BASE_URL, FakeTracker


class TestFullSync:
    async def test_pages_are_stored_with_parents_linked_whatever_the_order(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        await factories.team(admin, "payments")
        portfolio(tracker, 230)
        connection_id = await connect(admin)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        assert (run["fetched"], run["created"], run["updated"], run["deleted"]) == (230, 230, 0, 0)
        assert (run["pages"], run["api_calls"]) == (5, 5)
        items = await stored(database, connection_id)
        assert len(items) == 230
        stories = [i for i in items if i[3] == "issue"]
        assert all(i[6] == "E" + i[0].split("-")[0] for i in stories)
        response = await admin.get("/v1/work-items/PAY-3-2")
        assert response.status_code == 200, response.text
        story = response.json()
        assert (story["parent"], story["team"], story["estimate"]) == ("PAY-E3", "payments", 2.0)
        assert story["containers"] == ["PAY"]

    async def test_a_parent_named_only_by_key_is_linked_when_it_arrives_later(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        for i in range(60):  # the children fill the first page
            tracker.add(f"c{i}", parent_key="PAY-epic")
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        assert (await admin.get("/v1/work-items/PAY-c0")).json()["parent"] is None
        tracker.add("epic", type="epic")
        await sync(admin, connection_id, "incremental")
        children = await admin.get("/v1/work-items", params={"q": "PAY-c", "limit": 100})
        assert {c["parent"] for c in children.json()["items"]} == {"PAY-epic"}

    async def test_running_it_twice_changes_nothing_and_duplicates_nothing(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        portfolio(tracker, 60)
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        before = await stored(database, connection_id)
        again = await sync(admin, connection_id, "full")
        assert (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)
        assert await stored(database, connection_id) == before

    async def test_items_gone_from_the_provider_are_marked_deleted_and_revived_if_back(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        portfolio(tracker, 30)
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        gone = tracker.items["1-4"]
        tracker.delete("1-4")
        tracker.delete("2-0")
        run = await sync(admin, connection_id, "full")
        assert run["deleted"] == 2
        live = (await admin.get("/v1/work-items", params={"limit": 200})).json()["items"]
        assert {"PAY-1-4", "PAY-2-0"}.isdisjoint(i["key"] for i in live)
        everything = await admin.get(
            "/v1/work-items", params={"limit": 200, "include_deleted": True}
        )
        assert len(everything.json()["items"]) == 30
        tracker.items["1-4"] = gone
        revived = await sync(admin, connection_id, "full")
        assert (revived["updated"], revived["deleted"]) == (1, 0)
        assert (await admin.get("/v1/work-items/PAY-1-4")).json()["deleted_at"] is None

    async def test_team_created_after_the_sync_picks_up_its_items(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        portfolio(tracker, 10)
        await sync(admin, await connect(admin), "full")
        assert (await admin.get("/v1/work-items/PAY-E0")).json()["team"] is None
        await factories.team(admin, "payments")
        assert (await admin.get("/v1/work-items/PAY-E0")).json()["team"] == "payments"
        listed = await admin.get("/v1/work-items", params={"team": "payments", "limit": 50})
        assert len(listed.json()["items"]) == 10


class TestIncrementalSync:
    async def test_fetches_only_what_changed_since_the_last_sync(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        portfolio(tracker, 100)
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        tracker.touch("3-3", state="done", finished="2026-10-20T10:00:00+02:00")
        tracker.touch("E5", title="Renamed epic")
        tracker.add("9-9", parent="E9")
        calls = tracker.calls
        run = await sync(admin, connection_id, "incremental")
        assert (run["fetched"], run["created"], run["updated"]) == (3, 1, 2)
        assert tracker.calls - calls == run["api_calls"] == 1
        done = (await admin.get("/v1/work-items/PAY-3-3")).json()
        assert (done["status_category"], done["resolved_at"]) == ("done", "2026-10-20T08:00:00Z")
        assert (await admin.get("/v1/work-items/PAY-9-9")).json()["parent"] == "PAY-E9"
        nothing = await sync(admin, connection_id, "incremental")
        assert nothing["fetched"] == 0

    async def test_incremental_runs_never_delete(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        portfolio(tracker, 20)
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        tracker.delete("0-0")
        assert (await sync(admin, connection_id, "incremental"))["deleted"] == 0


class TestFaults:
    async def test_wrong_credentials_fail_the_run_at_once_with_a_clear_error(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        portfolio(tracker, 10)
        connection_id = await connect(admin)
        await admin.patch(
            f"/v1/connections/{connection_id}", json={"credentials": {"token": "wrong"}}
        )
        run = await sync(admin, connection_id, "full")
        assert (run["status"], run["attempts"]) == ("failed", 1)
        assert run["error"].startswith("AuthFailed")
        check = (await admin.post(f"/v1/connections/{connection_id}/check")).json()
        assert check["ok"] is False
        connection = (await admin.get(f"/v1/connections/{connection_id}")).json()
        assert connection["last_sync_status"] == "failed"

    async def test_rate_limit_and_server_errors_are_retried_to_the_clean_result(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database
    ) -> None:
        portfolio(tracker, 120)
        clean_id = await connect(admin, "clean")
        await sync(admin, clean_id, "full")
        faulty_id = await connect(admin, "faulty")
        tracker.fail(2, httpx.Response(429, headers={"Retry-After": "0"}))
        tracker.fail(4, httpx.Response(503))
        run = await sync(admin, faulty_id, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["attempts"] == 3
        assert run["api_calls"] == 3 + 2  # three pages, two refused calls
        assert await stored(database, faulty_id) == await stored(database, clean_id)

    async def test_a_killed_sync_resumes_from_its_checkpoint_to_the_clean_result(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, app: Any
    ) -> None:
        portfolio(tracker, 200)
        clean_id = await connect(admin, "clean")
        await sync(admin, clean_id, "full")
        killed_id = await connect(admin, "killed")
        services = app.state.services
        async with database.transaction() as session:
            connection = await session.get(Connection, uuid.UUID(killed_id))
            assert connection is not None
            run = await syncs.request_sync(session=session, connection=connection, mode="full")
        tracker.fail(3, WorkerKilled())  # the worker dies fetching page 3
        with pytest.raises(WorkerKilled):
            await SyncEngine(services).run(run.id)
        assert len(await stored(database, killed_id)) == 100  # pages 1 and 2 committed

        calls = tracker.calls
        await SyncEngine(services).run(run.id)  # a second worker: the lease is still live
        assert tracker.calls == calls

        async with database.transaction() as session:  # ... until it expires
            dead = await session.get(SyncRun, run.id)
            assert dead is not None
            dead.lease_expires_at = dead.queued_at
            session.add(dead)
        await resume_interrupted_syncs(services)
        finished = (await admin.get(f"/v1/sync-runs/{run.id}")).json()
        assert (finished["status"], finished["attempts"]) == ("succeeded", 2)
        assert finished["fetched"] == 200
        assert await stored(database, killed_id) == await stored(database, clean_id)
        async with database.sessionmaker() as session:
            count = await session.exec(
                select(sa.func.count()).where(WorkItem.connection_id == uuid.UUID(killed_id))
            )
            assert count.one() == 200

    async def test_a_stopped_worker_hands_its_run_back_for_another_to_resume_at_once(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, app: Any
    ) -> None:
        """A worker told to stop (its job cancelled) gives the lease back: no waiting for it
        to expire, and the next worker goes on from the checkpoint."""
        portfolio(tracker, 200)
        connection_id = await connect(admin)
        services = app.state.services
        run_id = await queued_run(database, connection_id)
        tracker.fail(3, asyncio.CancelledError())  # the shutdown arrives while page 3 loads
        with pytest.raises(asyncio.CancelledError):
            await SyncEngine(services).run(run_id)
        async with database.transaction() as session:
            stopped = await session.get(SyncRun, run_id)
            assert stopped is not None
            assert (stopped.status, stopped.lease_owner, stopped.pages) == ("running", None, 2)
        calls = tracker.calls
        await SyncEngine(services).run(run_id)
        finished = (await admin.get(f"/v1/sync-runs/{run_id}")).json()
        assert (finished["status"], finished["fetched"]) == ("succeeded", 200)
        assert tracker.calls - calls == 2  # pages 3 and 4 only: resumed, not restarted
        assert await count_items(database, connection_id) == 200

    async def test_a_worker_that_lost_its_lease_does_not_fail_the_run(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, app: Any
    ) -> None:
        portfolio(tracker, 120)
        run_id = await queued_run(database, await connect(admin))
        engine = SyncEngine(app.state.services)

        def lease_taken_over(_: dict[str, int]) -> None:
            engine.worker = "another-worker"  # the stored lease is no longer this worker's

        engine.on_page = lease_taken_over
        tracker.fail(2, httpx.Response(401))
        await engine.run(run_id)
        async with database.sessionmaker() as session:
            stored_run = await session.get(SyncRun, run_id)
            assert stored_run is not None
            assert (stored_run.status, stored_run.error) == ("running", None)
            assert stored_run.lease_owner is not None


class TestSyncRequests:
    async def test_one_sync_per_connection_at_a_time(
        self, admin: httpx.AsyncClient, database: Database
    ) -> None:
        connection_id = await connect(admin)
        async with database.transaction() as session:
            connection = await session.get(Connection, uuid.UUID(connection_id))
            assert connection is not None
            active = await syncs.request_sync(session=session, connection=connection, mode="full")
        response = await admin.post(f"/v1/connections/{connection_id}/sync", json={})
        body = assert_problem(response, 409, "conflict")
        assert str(active.id) in body["detail"]

    async def test_a_new_team_map_rewrites_the_stored_items(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await factories.team(admin, "payments")
        await factories.team(admin, "platform")
        portfolio(tracker, 20)
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        await admin.patch(
            f"/v1/connections/{connection_id}",
            json={"config": {"base_url": BASE_URL, "team_map": {"PAY": "platform"}}},
        )
        moved = await admin.get("/v1/work-items", params={"team": "platform", "limit": 50})
        assert len(moved.json()["items"]) == 20
        runs = (await admin.get(f"/v1/connections/{connection_id}/sync-runs")).json()["items"]
        assert [(r["mode"], r["status"]) for r in runs] == [
            ("full", "succeeded"),
            ("full", "succeeded"),
        ]


class TestSchedule:
    async def test_due_connections_are_synced_and_not_again_until_their_interval_passes(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, app: Any
    ) -> None:
        portfolio(tracker, 10)
        scheduled = await connect(admin, "scheduled")
        await admin.patch(f"/v1/connections/{scheduled}", json={"sync_interval_minutes": 60})
        await connect(admin, "manual")  # interval 0: never scheduled
        services = app.state.services

        async def runs(connection_id: str) -> int:
            page = await admin.get(f"/v1/connections/{connection_id}/sync-runs")
            return len(page.json()["items"])

        await schedule_due_syncs(services)
        assert await runs(scheduled) == 1
        assert (await admin.get("/v1/connections/manual/sync-runs")).json()["items"] == []
        await schedule_due_syncs(services)
        assert await runs(scheduled) == 1  # not due yet
        async with database.transaction() as session:
            row = await session.get(Connection, uuid.UUID(scheduled))
            assert row is not None
            assert row.last_sync_at is not None
            row.last_sync_at -= timedelta(minutes=61)
            session.add(row)
        await schedule_due_syncs(services)
        assert await runs(scheduled) == 2
