"""Starting syncs: one active run per connection, its job sent after the commit."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from service.errors import Conflict, NotFound
from service.models import Connection, SyncRun
from service.pagination import Page, PageParams
from service.sync import repository
from service.sync.schemas import SyncMode, SyncRunOut
from service.worker.enqueue import after_commit


async def request_sync(*, session: AsyncSession, connection: Connection, mode: SyncMode) -> SyncRun:
    """Queue a sync run; 409 while another run of the connection is queued or running."""
    run = SyncRun(
        connection_id=connection.id,
        mode=mode,
        start_cursor=None if mode == "full" else connection.cursor,
    )
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:
        active = await repository.active_run(session, connection.id)
        detail = f"a sync of {connection.name!r} is already queued or running"
        raise Conflict(f"{detail}: {active.id}" if active else detail) from None
    after_commit(session, "sync_connection", str(run.id))
    return run


async def get_run(*, session: AsyncSession, run_id: uuid.UUID) -> SyncRun:
    run = await repository.get_run(session, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
    return run


async def list_runs(
    *, session: AsyncSession, page: PageParams, connection: Connection
) -> Page[SyncRunOut]:
    rows = await repository.list_runs(session, page, connection.id)
    rows, next_cursor = page.split(rows, lambda r: r.id)
    return Page(items=[SyncRunOut.model_validate(r) for r in rows], next_cursor=next_cursor)


async def request_full_resync(*, session: AsyncSession, connection: Connection) -> None:
    """Bring stored items up to date after a config change.

    The connection's cursor was reset, so whichever sync runs next fetches everything; a
    full run is queued now unless one is already active (that one, finishing, must not
    restore the old cursor: see ``SyncEngine._succeed``).
    """
    if await repository.active_run(session, connection.id) is None:
        await request_sync(session=session, connection=connection, mode="full")
