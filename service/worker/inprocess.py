"""Jobs run inside the server process when no Redis is configured.

The same job functions as the arq worker, with the same retry contract; what is lost is
durability across a restart of the process, which the sync engine makes up for by resuming
interrupted runs (their checkpoint is in the database).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from service import telemetry
from service.worker.jobs import COALESCED, JOBS, MAX_TRIES, SPACING
from service.worker.retry import RetryLater

if TYPE_CHECKING:
    from service.services import Services

logger = logging.getLogger(__name__)


class InProcessQueue:
    def __init__(self, *, eager: bool = False) -> None:
        # eager: run each job to its end inside enqueue(), as tests and the CLI want.
        self.eager = eager
        self.services: Services | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Coalesced jobs running now, and those asked for again meanwhile.
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._started: dict[str, float] = {}  # when each coalesced job last started

    def bind(self, services: Services) -> None:
        self.services = services
        telemetry.queue_depth(lambda: len(self._tasks))

    async def enqueue(self, job: str, *args: Any) -> None:
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}")
        telemetry.JOBS_QUEUED.labels(job).inc()
        if self.eager:
            await self._run(job, args)
            return
        if job in COALESCED and not args:
            if job in self._running:
                self._again.add(job)
                return
            self._running.add(job)
            run = self._coalesced(job)
        else:
            run = self._run(job, args)
        task = asyncio.create_task(run, name=f"job:{job}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _coalesced(self, job: str) -> None:
        """Run ``job``, and once more if it was asked for while it ran or waited its turn
        (``SPACING``)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                wait = self._started.get(job, -math.inf) + SPACING.get(job, 0.0) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._again.discard(job)
                self._started[job] = loop.time()
                await self._run(job, ())
                if job not in self._again:
                    return
        finally:
            self._running.discard(job)

    async def _run(self, job: str, args: tuple[Any, ...]) -> None:
        assert self.services is not None, "bind() the queue to its services first"
        for attempt in range(1, MAX_TRIES + 1):
            try:
                with telemetry.job_run(job):
                    await JOBS[job](self.services, *args)
                return
            except RetryLater as retry:
                if attempt == MAX_TRIES:
                    logger.error("job.gave_up", extra={"job": job, "reason": str(retry)})
                    return
                logger.info("job.retry", extra={"job": job, "defer": retry.defer})
                await asyncio.sleep(retry.defer)
            except Exception:
                logger.exception("job.failed", extra={"job": job})
                return

    async def drain(self, timeout: float = 8.0) -> None:
        """Wait for running jobs, then cancel what is left (its run resumes later)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def every(queue: InProcessQueue, job: str, seconds: float) -> None:
    """Enqueue ``job`` every ``seconds`` until cancelled: the in-process stand-in for cron."""
    while True:
        await asyncio.sleep(seconds)
        await queue.enqueue(job)
