"""The job functions, shared by the arq worker and the in-process queue."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from service.errors import Conflict
from service.services import Services
from service.sync import repository
from service.sync import service as syncs
from service.sync.engine import SyncEngine

# The engine's own attempt limit decides; this only bounds a job that keeps asking.
MAX_TRIES = 10


async def sync_connection(services: Services, run_id: str) -> None:
    """Run or resume one sync run."""
    await SyncEngine(services).run(uuid.UUID(run_id))


async def resume_interrupted_syncs(services: Services) -> None:
    """Re-enqueue runs whose worker died (no live lease); their checkpoint resumes them."""
    async with services.unit_of_work() as session:
        run_ids = await repository.interrupted_runs(session, datetime.now(UTC))
    for run_id in run_ids:
        await services.queue.enqueue("sync_connection", str(run_id))


async def schedule_due_syncs(services: Services) -> None:
    """Queue an incremental sync for each connection whose interval has passed."""
    async with services.unit_of_work() as session:
        for connection in await repository.due_connections(session, datetime.now(UTC)):
            try:
                async with session.begin_nested():
                    await syncs.request_sync(
                        session=session, connection=connection, mode="incremental"
                    )
            except Conflict:
                continue  # a run started since we looked; it will do


async def process_webhook(services: Services, delivery_id: str) -> None:
    """Apply one stored provider webhook."""
    from service.hooks.service import process

    await process(services, uuid.UUID(delivery_id))


JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    "process_webhook": process_webhook,
    "resume_interrupted_syncs": resume_interrupted_syncs,
    "schedule_due_syncs": schedule_due_syncs,
    "sync_connection": sync_connection,
}
