"""The sync engine: streams a connector's pages into the database, one transaction a page.

Guarantees, each held by a test:
- a page's items, their parent links and the run's checkpoint commit together, so a run
  killed at any point resumes from its last committed page and loses nothing;
- upserts are keyed on (connection, external id), so pages seen twice (a resumed run, the
  overlap window of an incremental sync) leave no duplicates;
- a run is leased to one worker; a second worker waits for the lease to expire;
- a full run that succeeds marks deleted every item it did not see and the connector, asked
  again, does not find; one that fails deletes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors import AuthFailed, Connector, Page, Permanent, RateLimited, Transient
from service import telemetry
from service.connections.service import build_connector
from service.crypto import UndecryptableSecret
from service.derived import state as derived
from service.models import Connection, SyncRun
from service.rollups import cells
from service.services import Services
from service.sync import repository, store
from service.sync.schemas import SyncRunOut
from service.webhooks import outbox
from service.webhooks.events import EventType
from service.worker.enqueue import withdraw
from service.worker.retry import RetryLater

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = 300.0


class LeaseLost(Exception):
    """Another worker took the run over; this one stops without committing."""


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped, with full jitter."""
    return random.uniform(0.5, 1.0) * min(MAX_BACKOFF, 2.0**attempt)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _measure(run: SyncRun, provider: str) -> None:
    """The metrics of a run that ended (counts are the run's totals, over all its attempts)."""
    telemetry.SYNC_RUNS.labels(provider, run.mode, run.status).inc()
    if run.started_at is not None and run.finished_at is not None:
        elapsed = (run.finished_at - run.started_at).total_seconds()
        telemetry.SYNC_DURATION.labels(provider, run.mode).observe(elapsed)
    for outcome in ("fetched", "created", "updated", "deleted"):
        telemetry.SYNC_ITEMS.labels(provider, outcome).inc(getattr(run, outcome))
    telemetry.SYNC_API_CALLS.labels(provider).inc(run.api_calls)


async def _announce(session: Any, kind: EventType, run: SyncRun, connection: Connection) -> None:
    """sync.completed or sync.failed, in the transaction that ends the run."""
    data = {
        "sync_run": SyncRunOut.model_validate(run).model_dump(mode="json"),
        "connection": {"id": str(connection.id), "name": connection.name,
                       "provider": connection.provider},
    }  # fmt: skip
    await outbox.emit(session, [outbox.Event(kind, data, about_team=False)])


def _after_pages(session: Any) -> None:
    """When a run ends, succeeded or failed, what its committed pages changed is scanned for
    events and the roll-up cells they appended to are compacted. A run handed back or
    deferred for a retry goes on later and ends there; the minute's scan and the compaction
    every 20 s cover the time between."""
    outbox.request_scan(session)
    cells.request_compaction(session)


class SyncEngine:
    def __init__(
        self, services: Services, *, on_page: Callable[[dict[str, int]], None] | None = None
    ) -> None:
        self.services = services
        self.on_page = on_page
        self.worker = worker_id()
        self.lease = timedelta(seconds=services.settings.sync_lease_seconds)
        self._reported_calls = 0

    def _unreported_calls(self, connector: Connector[Any, Any] | None) -> int:
        """API calls made since the last count saved to the run."""
        if connector is None:
            return 0
        calls = connector.stats.api_calls - self._reported_calls
        self._reported_calls = connector.stats.api_calls
        return calls

    async def run(self, run_id: uuid.UUID) -> None:
        """Run (or resume) the sync run ``run_id`` to its end; safe to call twice."""
        now = datetime.now(UTC)
        async with self.services.unit_of_work() as session:
            claimed = await repository.claim(
                session, run_id, worker=self.worker, now=now, until=now + self.lease
            )
            run = await repository.get_run(session, run_id) if claimed else None
            connection = await session.get(Connection, run.connection_id) if run else None
        if run is None or connection is None:
            logger.info("sync.not_claimed", extra={"run_id": str(run_id)})
            return
        logger.info(
            "sync.started",
            extra={"run_id": str(run_id), "mode": run.mode, "attempt": run.attempts},
        )
        connector: Connector[Any, Any] | None = None
        try:
            connector = build_connector(
                registry=self.services.registry,
                vault=self.services.vault,
                connection=connection,
                http=self.services.http,
            )
            await self._pages(run, connection, connector)
            if run.mode == "full":
                await self._recheck_unseen(run, connection, connector)
            await self._succeed(run, connection, self._unreported_calls(connector))
        except LeaseLost:
            logger.warning("sync.lease_lost", extra={"run_id": str(run_id)})
        except (AuthFailed, Permanent, UndecryptableSecret) as exc:
            await self._fail(run, connection, exc, connector)
        except (RateLimited, Transient, httpx.TransportError) as exc:
            await self._retry_or_fail(run, connection, exc, connector)
        except asyncio.CancelledError:
            # Stopped (a worker shutting down): hand the run back now rather than let its
            # lease run out, so whoever runs the job next resumes at once from the checkpoint.
            await asyncio.shield(self._hand_back(run, connector))
            raise

    async def _hand_back(self, run: SyncRun, connector: Connector[Any, Any] | None) -> None:
        async with self.services.unit_of_work() as session:
            calls = self._unreported_calls(connector)
            await repository.release(session, run.id, worker=self.worker, api_calls=calls)
        logger.info("sync.handed_back", extra={"run_id": str(run.id)})

    async def _pages(
        self, run: SyncRun, connection: Connection, connector: Connector[Any, Any]
    ) -> None:
        cursor = run.checkpoint if run.checkpoint is not None else run.start_cursor
        await self._commit_each(run, connection, connector, connector.fetch(cursor))

    async def _commit_each(
        self,
        run: SyncRun,
        connection: Connection,
        connector: Connector[Any, Any],
        pages: AsyncGenerator[Page, None],
    ) -> None:
        # aclosing: a page that fails to commit stops the connector's fetch there and then.
        async with contextlib.aclosing(pages) as opened:
            async for page in opened:
                await self._commit(run, connection, connector, page)

    async def _recheck_unseen(
        self, run: SyncRun, connection: Connection, connector: Connector[Any, Any]
    ) -> None:
        """Before a full run marks deleted what it did not see, the connector reads those
        back: a fetch whose pages shifted under a concurrent change may have passed one."""
        async with self.services.unit_of_work() as session:
            unseen = await repository.unseen_external_ids(session, connection.id, run.id)
        if unseen:
            await self._commit_each(run, connection, connector, connector.recheck(unseen))

    async def _commit(
        self, run: SyncRun, connection: Connection, connector: Connector[Any, Any], page: Page
    ) -> None:
        now = datetime.now(UTC)
        async with self.services.unit_of_work() as session:
            counts = await store.store_items(
                session, connection.id, page.items, now=now, run_id=run.id
            )
            # Events and roll-up cells are looked after once the run ends (and every minute
            # meanwhile), not after every page: a scan a page cost a quarter of a sync's
            # time, and found progress halfway through a sync, which no one asked about.
            withdraw(session, outbox.SCAN_JOB, cells.COMPACT_JOB)
            calls = connector.stats.api_calls - self._reported_calls
            if not await repository.record_page(
                session,
                run.id,
                worker=self.worker,
                checkpoint=page.cursor,
                counts=counts,
                api_calls=calls,
                until=now + self.lease,
            ):
                raise LeaseLost
        self._reported_calls += calls
        run.checkpoint = page.cursor if page.cursor is not None else run.checkpoint
        if self.on_page is not None:
            self.on_page(counts)
        logger.info(
            "sync.page_committed",
            extra={"run_id": str(run.id), **{f"items_{k}": v for k, v in counts.items()}},
        )

    async def _succeed(self, run: SyncRun, connection: Connection, api_calls: int) -> None:
        now = datetime.now(UTC)
        async with self.services.unit_of_work() as session:
            deleted = 0
            if run.mode == "full":
                gone = await repository.mark_unseen_deleted(session, connection.id, run.id, now)
                await derived.refresh(session, gone)
                deleted = len(gone)
            stored, stored_connection = await self._finish(
                session, run, connection, "succeeded", now, api_calls
            )
            if stored.lease_owner != self.worker:
                raise LeaseLost
            stored.deleted = deleted
            # A config change during the run reset the cursor so that everything is
            # fetched again under the new config; advancing it now would undo that.
            config_unchanged = stored.started_at is None or (
                stored_connection.updated_at <= stored.started_at
            )
            if stored.checkpoint is not None and config_unchanged:
                stored_connection.cursor = stored.checkpoint
            stored.lease_owner = stored.lease_expires_at = None
            await _announce(session, EventType.sync_completed, stored, stored_connection)
            _after_pages(session)
        _measure(stored, connection.provider)
        logger.info(
            "sync.succeeded",
            extra={
                "run_id": str(run.id),
                "items_fetched": stored.fetched,
                "items_created": stored.created,
                "items_updated": stored.updated,
                "items_deleted": deleted,
                "api_calls": stored.api_calls,
            },
        )

    async def _finish(
        self,
        session: Any,
        run: SyncRun,
        connection: Connection,
        status: str,
        now: datetime,
        api_calls: int,
    ) -> tuple[SyncRun, Connection]:
        """The run and its connection, re-read and marked with how the run ended."""
        stored = await repository.get_run(session, run.id)
        stored_connection = await session.get(Connection, connection.id)
        assert stored is not None
        assert stored_connection is not None
        stored.status, stored.finished_at = status, now
        stored.api_calls += api_calls
        stored_connection.last_sync_status, stored_connection.last_sync_at = status, now
        session.add_all([stored, stored_connection])
        return stored, stored_connection

    async def _fail(
        self,
        run: SyncRun,
        connection: Connection,
        exc: BaseException,
        connector: Connector[Any, Any] | None,
    ) -> None:
        now = datetime.now(UTC)
        error = f"{type(exc).__name__}: {exc}"
        try:
            async with self.services.unit_of_work() as session:
                stored, _ = await self._finish(
                    session, run, connection, "failed", now, self._unreported_calls(connector)
                )
                if stored.lease_owner != self.worker:
                    # Another worker took the run over; its outcome stands, not this one's.
                    raise LeaseLost
                stored.error = error
                stored.lease_owner = stored.lease_expires_at = None
                await _announce(session, EventType.sync_failed, stored, connection)
                _after_pages(session)
        except LeaseLost:
            logger.warning("sync.lease_lost", extra={"run_id": str(run.id), "error": error})
            return
        _measure(stored, connection.provider)
        logger.warning("sync.failed", extra={"run_id": str(run.id), "error": error})

    async def _retry_or_fail(
        self,
        run: SyncRun,
        connection: Connection,
        exc: BaseException,
        connector: Connector[Any, Any] | None,
    ) -> None:
        if run.attempts >= MAX_ATTEMPTS:
            await self._fail(run, connection, exc, connector)
            return
        defer = exc.retry_after if isinstance(exc, RateLimited) else backoff(run.attempts)
        async with self.services.unit_of_work() as session:
            calls = self._unreported_calls(connector)
            await repository.release(session, run.id, worker=self.worker, api_calls=calls)
        logger.info(
            "sync.retry_scheduled",
            extra={"run_id": str(run.id), "defer": defer, "error": f"{type(exc).__name__}: {exc}"},
        )
        raise RetryLater(defer, f"{type(exc).__name__}: {exc}")
