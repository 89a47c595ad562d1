"""Jobs requested inside a unit of work are sent only after it commits.

A job enqueued before its commit could run before the rows it reads exist, or for a change
that is then rolled back. So requests are parked on the session and handed to the queue by
whoever owns the transaction, once it has committed; a rollback simply drops them.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

_PENDING = "okr_sync.pending_jobs"


class JobQueue(Protocol):
    async def enqueue(self, job: str, *args: Any) -> None: ...


def after_commit(session: AsyncSession, job: str, *args: Any) -> None:
    """Ask for ``job(*args)`` to run once this session's transaction commits (once, however
    often it is asked for)."""
    pending = session.info.setdefault(_PENDING, [])
    if (job, args) not in pending:
        pending.append((job, args))


async def send_pending(session: AsyncSession, queue: JobQueue) -> None:
    """Hand the parked jobs to the queue; call only after the commit succeeded."""
    for job, args in session.info.pop(_PENDING, []):
        await queue.enqueue(job, *args)


def withdraw(session: AsyncSession, *jobs: str) -> None:
    """Take back the requests for ``jobs`` (whatever their arguments) parked on this session."""
    pending = session.info.get(_PENDING, [])
    pending[:] = [(job, args) for job, args in pending if job not in jobs]


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)
