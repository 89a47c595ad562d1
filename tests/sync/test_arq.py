"""Syncs through arq on a real Redis: the API enqueues, a burst worker runs the job."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker

from service import logs
from service.db import Database
from service.settings import Settings
from service.worker.arq_queue import ArqQueue
from service.worker.arq_worker import functions
from tests.sync.conftest import started_app
from tests.sync.helpers import connect, portfolio, stored
from tests.tracker import FakeTracker

pytestmark = pytest.mark.redis


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[ArqQueue]:
    # A queue of its own: tests never see each other's jobs.
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    queue = ArqQueue(pool, queue_name=f"okr-sync-test:{uuid.uuid4().hex}")
    try:
        yield queue
    finally:
        await pool.delete(queue.queue_name)
        await pool.aclose()


@pytest.fixture
async def app(
    settings: Settings,
    database: Database,
    example_plugin: Path,
    queue: ArqQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Any]:
    async with started_app(settings, database, example_plugin, monkeypatch, queue) as application:
        yield application


async def run_worker(app: Any, queue: ArqQueue) -> None:
    """A burst worker: runs what is queued (retries included), then stops."""
    worker = Worker(
        functions(),
        redis_pool=queue.redis,
        queue_name=queue.queue_name,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
        # The test's sessions share one connection: jobs (a sync and the event scans it
        # asks for) must take turns on it.
        max_jobs=1,
        ctx={"services": app.state.services},
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_a_sync_requested_over_the_api_runs_on_an_arq_worker(
    admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, app: Any, queue: ArqQueue
) -> None:
    portfolio(tracker, 120)
    connection_id = await connect(admin)
    tracker.fail(2, httpx.Response(429, headers={"Retry-After": "0"}))
    accepted = (
        await admin.post(
            f"/v1/connections/{connection_id}/sync", json={"mode": "full"},
            headers={"X-Request-ID": "req-arq-7"},
        )
    ).json()  # fmt: skip
    assert accepted["status"] == "queued"
    assert (await admin.get(f"/v1/sync-runs/{accepted['id']}")).json()["status"] == "queued"

    stream = io.StringIO()
    handler = logs.handler("json", stream)
    logging.getLogger().addHandler(handler)
    try:
        await run_worker(app, queue)
    finally:
        logging.getLogger().removeHandler(handler)
    # The worker's logs of the run carry the id of the request that asked for it.
    worker_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    succeeded = [r for r in worker_lines if r["message"] == "sync.succeeded"]
    assert [r["request_id"] for r in succeeded] == ["req-arq-7"]
    run = (await admin.get(f"/v1/sync-runs/{accepted['id']}")).json()
    assert (run["status"], run["fetched"], run["attempts"]) == ("succeeded", 120, 2)
    assert len(await stored(database, connection_id)) == 120


async def test_a_run_enqueued_twice_is_queued_once(queue: ArqQueue) -> None:
    run_id = str(uuid.uuid4())
    await queue.enqueue("sync_connection", run_id)
    await queue.enqueue("sync_connection", run_id)
    assert await queue.redis.zcard(queue.queue_name) == 1


def test_arq_command_line_settings_carry_every_job(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from arq.worker import create_worker

    from service.settings import get_settings
    from service.worker import arq_worker

    monkeypatch.setenv("OKR_SYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("OKR_SYNC_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        settings_cls = arq_worker.WorkerSettings
        worker = create_worker(settings_cls)
        assert set(worker.functions) >= {"sync_connection", "resume_interrupted_syncs"}
        assert [job.name for job in worker.cron_jobs] == [c.name for c in arq_worker.cron_jobs()]
        with pytest.raises(AttributeError):
            _ = arq_worker.NoSuchThing
    finally:
        get_settings.cache_clear()
