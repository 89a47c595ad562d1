"""What requests and jobs share: the database, one HTTP client, plugins, the vault, the queue."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.registry import ConnectorClass, discover
from service.crypto import Vault
from service.db import Database
from service.settings import Settings
from service.webhooks.destinations import outbound_client
from service.worker.enqueue import JobQueue, discard_pending, send_pending

RECEIVERS = 1024


class BindableQueue(JobQueue, Protocol):
    def bind(self, services: Services) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    registry: Mapping[str, ConnectorClass]
    vault: Vault
    queue: JobQueue
    # Outbound webhooks go through their own client: public addresses only, no redirects.
    outbound: httpx.AsyncClient
    # What receives each connection's webhooks, by what it was built from (service.hooks).
    receivers: dict[Hashable, Any] = field(default_factory=dict)

    def keep_receiver(self, key: Hashable, receiver: Any) -> None:
        """Keep at most RECEIVERS: past that, what an edited connection left behind goes."""
        if len(self.receivers) >= RECEIVERS:
            self.receivers.clear()
        self.receivers[key] = receiver

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A transaction; the jobs it asked for are sent once it has committed."""
        async with self.db.transaction() as session:
            try:
                yield session
            except BaseException:
                discard_pending(session)
                raise
        await send_pending(session, self.queue)


HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The collector's thresholds while services run. At Python's (700, 10, 10) a young pass
# comes every 700 new objects and finds the rows of every request awaiting the database
# still alive, so it promotes them, and the promoted pile set off a full pass about once a
# second in each API process: 12% of its CPU under bench.load. A pass every 10,000 lets
# most of them die first; cyclic garbage lives a little longer.
GC_THRESHOLDS = (10_000, 20, 20)


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    queue: BindableQueue,
    database: Database | None = None,
    registry: Mapping[str, ConnectorClass] | None = None,
) -> AsyncIterator[Services]:
    """Everything a request or a job needs, built once and closed at the end.

    ``database`` is used as given and left open (tests); otherwise one is built from the
    settings and disposed of here.
    """
    db = database or Database.from_settings(settings)
    try:
        outbound = outbound_client(allow_private=settings.allow_private_webhook_urls)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http, outbound:
            services = Services(
                settings=settings,
                db=db,
                http=http,
                registry=registry if registry is not None else discover(),
                vault=Vault(settings.secret_keys()),
                queue=queue,
                outbound=outbound,
            )
            queue.bind(services)
            # What start-up built lives as long as the process. Frozen, it is left out of
            # the collector's full passes, which walk every live object: they held a roll-up
            # up by about 100 ms (bench/rollups: p95 40 ms frozen, 140 ms not) and took a
            # quarter of a 10k-issue sync (bench/sync_jira). Server, worker and CLI alike.
            thresholds = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            try:
                yield services
            finally:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
    finally:
        if database is None:
            await db.dispose()
