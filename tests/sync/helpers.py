"""Driving syncs through the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from service.db import Database
from service.models import Connection, SyncRun, WorkItem
from service.services import Services
from service.sync import service as syncs
from service.sync.engine import SyncEngine
from service.worker.jobs import resume_interrupted_syncs
from tests import factories
from tests.tracker import BASE_URL, TOKEN, FakeTracker


async def connect(admin: httpx.AsyncClient, name: str = "tracker", **config: Any) -> str:
    body = {
        "provider": "example",
        "name": name,
        "config": {"base_url": BASE_URL, "team_map": {"PAY": "payments"}, "page_size": 50} | config,
        "credentials": {"token": TOKEN},
    }
    made = await factories.created(admin.post("/v1/connections", json=body))
    return str(made["id"])


async def sync(admin: httpx.AsyncClient, connection_id: str, mode: str) -> dict[str, Any]:
    response = await admin.post(f"/v1/connections/{connection_id}/sync", json={"mode": mode})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = (await admin.get(f"/v1/sync-runs/{response.json()['id']}")).json()
    return run


def portfolio(tracker: FakeTracker, n: int) -> None:
    """Epics with stories below them; every story updated before its epic, so children
    arrive in earlier pages than their parents."""
    for epic in range(n // 10):
        for story in range(9):
            tracker.add(f"{epic}-{story}", parent=f"E{epic}", points=story % 4 or None)
        tracker.add(f"E{epic}", type="epic", labels=["okr"])


async def stored(database: Database, connection_id: str) -> list[tuple[Any, ...]]:
    """The items of a connection as comparable tuples, parents by external id."""
    async with database.sessionmaker() as session:
        parent = sa.orm.aliased(WorkItem)
        rows = await session.exec(
            select(
                WorkItem.external_id, WorkItem.key, WorkItem.title, WorkItem.kind,
                WorkItem.status_category, WorkItem.estimate, parent.external_id,
                WorkItem.deleted_at.is_not(None),  # type: ignore[union-attr]
            )
            .outerjoin(parent, col(parent.id) == WorkItem.parent_id)
            .where(WorkItem.connection_id == uuid.UUID(connection_id))
            .order_by(col(WorkItem.external_id))
        )  # fmt: skip
        return [tuple(r) for r in rows.all()]


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


async def queued_run(database: Database, connection_id: str) -> uuid.UUID:
    """A full sync run requested without running it (as an API request would queue it)."""
    async with database.transaction() as session:
        connection = await session.get(Connection, uuid.UUID(connection_id))
        assert connection is not None
        run = await syncs.request_sync(session=session, connection=connection, mode="full")
        return run.id


async def kill_after(services: Services, run_id: uuid.UUID, commits: int) -> None:
    """Run the sync until ``commits`` pages are committed, then die as a killed process
    would: right after the commit, with the lease still held."""
    done = 0

    def die(_: dict[str, int]) -> None:
        nonlocal done
        done += 1
        if done == commits:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        await SyncEngine(services, on_page=die).run(run_id)


async def expire_and_resume(services: Services, database: Database, run_id: uuid.UUID) -> None:
    """The dead worker's lease runs out; the job that finds interrupted runs resumes it."""
    async with database.transaction() as session:
        dead = await session.get(SyncRun, run_id)
        assert dead is not None
        dead.lease_expires_at = dead.queued_at
        session.add(dead)
    await resume_interrupted_syncs(services)


async def count_items(database: Database, connection_id: str) -> int:
    async with database.sessionmaker() as session:
        found = await session.exec(
            select(sa.func.count()).where(col(WorkItem.connection_id) == uuid.UUID(connection_id))
        )
        return int(found.one())
