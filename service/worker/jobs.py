"""The job functions, shared by the arq worker and the in-process queue."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.errors import Conflict
from service.services import Services
from service.sync import repository
from service.sync import service as syncs
from service.sync.engine import SyncEngine

# The engine's own attempt limit decides; this only bounds a job that keeps asking.
MAX_TRIES = 10
# Jobs that take whatever waits: in-process, one running and one asked for meanwhile is as
# good as many. (On arq, the scan is queued once by job id; a webhook job is sent per delivery
# and those that find nothing left return at once, since a refused duplicate could miss one.)
COALESCED = frozenset({"scan_events", "process_webhooks", "compact_rollup_cells"})
ONE_QUEUED_ON_ARQ = frozenset({"scan_events", "compact_rollup_cells"})
# In-process, a coalesced job starts at most once per this many seconds: a scan reads the
# whole portfolio, and under a steady stream of writes back-to-back scans took a core.
# (arq gets the same from its time-bucketed job ids.)
SPACING = {"scan_events": 5.0, "compact_rollup_cells": 1.0}


async def sync_connection(services: Services, run_id: str, *_: str) -> None:
    """Run or resume one sync run. Extra arguments only tell resumptions apart (see below)."""
    await SyncEngine(services).run(uuid.UUID(run_id))


async def resume_interrupted_syncs(services: Services) -> None:
    """Re-enqueue runs whose worker died (no live lease); their checkpoint resumes them."""
    async with services.unit_of_work() as session:
        run_ids = await repository.interrupted_runs(session, datetime.now(UTC))
    # A job of its own for each resumption: the dead worker's job may still hold the run's
    # usual job id on arq, which would refuse a second. Two running at once is harmless: the
    # lease lets one work and the other return.
    stamp = f"resumed-{int(datetime.now(UTC).timestamp())}"
    for run_id in run_ids:
        await services.queue.enqueue("sync_connection", str(run_id), stamp)


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


async def process_webhooks(services: Services) -> None:
    """Apply the stored provider webhooks that wait, in batches."""
    from service.hooks.service import process

    await process(services)


async def deliver_webhooks(services: Services) -> None:
    """Send the outbound webhook messages that are due."""
    from service.webhooks.delivery import deliver_due

    await deliver_due(services, services.outbound)


async def scan_events(services: Services) -> None:
    """Find the events that writes since the last scan caused (service.webhooks.scans)."""
    from service.webhooks.scans import run_scans

    await run_scans(services)


async def scan_stale_key_results(services: Services) -> None:
    """The daily scan, which also looks for key results gone without check-ins."""
    from service.webhooks.scans import run_scans

    await run_scans(services, stale=True)


async def compact_rollup_cells(services: Services) -> None:
    """Merge the roll-up cells' appended rows (service.rollups.cells.compact)."""
    from service.rollups.cells import compact

    async with services.unit_of_work() as session:
        await compact(session)


async def prune_history(services: Services) -> None:
    """Delete what is done and older than the retention: delivered or failed outbound
    messages with their attempts, and applied or ignored provider webhooks."""
    from service.hooks.service import prune as prune_inbound
    from service.webhooks.delivery import prune as prune_outbound

    cutoff = datetime.now(UTC) - timedelta(days=services.settings.history_retention_days)
    async with services.unit_of_work() as session:
        await prune_outbound(session, cutoff)
        await prune_inbound(session, cutoff)


JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    "compact_rollup_cells": compact_rollup_cells,
    "deliver_webhooks": deliver_webhooks,
    "process_webhooks": process_webhooks,
    "prune_history": prune_history,
    "resume_interrupted_syncs": resume_interrupted_syncs,
    "scan_events": scan_events,
    "scan_stale_key_results": scan_stale_key_results,
    "schedule_due_syncs": schedule_due_syncs,
    "sync_connection": sync_connection,
}
