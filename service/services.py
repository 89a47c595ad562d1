"""What requests and jobs share: the database, one HTTP client, plugins, the vault, the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.registry import ConnectorClass
from service.crypto import Vault
from service.db import Database
from service.settings import Settings
from service.worker.enqueue import JobQueue, discard_pending, send_pending


@dataclass
class Services:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    registry: Mapping[str, ConnectorClass]
    vault: Vault
    queue: JobQueue

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
