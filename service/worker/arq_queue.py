"""The queue on Redis: jobs go to arq workers (``okr-sync worker``), which may run anywhere."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import redis
from arq.connections import ArqRedis, RedisSettings, create_pool

from service import logs, telemetry
from service.worker.jobs import ONE_QUEUED_ON_ARQ

if TYPE_CHECKING:
    from service.services import Services

DEFAULT_QUEUE = "okr-sync:queue"  # Settings.queue_name
COALESCE_SECONDS = 5


def job_id(job: str, args: tuple[Any, ...]) -> str | None:
    """One queued job per run: arq refuses a second with the same id while the first waits."""
    if args:
        return f"{job}:{':'.join(map(str, args))}"
    if job in ONE_QUEUED_ON_ARQ:
        # One per few seconds: arq refuses the rest. Bucketed by time, because a job id that
        # a killed worker left "in progress" would otherwise refuse every later one.
        return f"{job}:{int(time.time() // COALESCE_SECONDS)}"
    return None


class ArqQueue:
    eager = False

    def __init__(
        self, redis: ArqRedis, *, queue_name: str = DEFAULT_QUEUE, owns_pool: bool = False
    ) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._owns_pool = owns_pool

    @classmethod
    async def connect(cls, redis_url: str, *, queue_name: str = DEFAULT_QUEUE) -> ArqQueue:
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(pool, queue_name=queue_name, owns_pool=True)

    def bind(self, services: Services) -> None:
        """The workers build their own services; only the depth gauge needs the queue."""
        url = services.settings.redis_url
        if url:
            depth = redis.Redis.from_url(url, socket_timeout=2)

            def waiting() -> float:
                count: int = depth.zcard(self.queue_name)  # type: ignore[assignment]
                return float(count)

            telemetry.queue_depth(waiting)

    async def enqueue(self, job: str, *args: Any) -> None:
        telemetry.JOBS_QUEUED.labels(job).inc()
        # The request that asked for the job, so its logs can be followed into the worker.
        await self.redis.enqueue_job(
            job, *args, _job_id=job_id(job, args), _queue_name=self.queue_name,
            request_id=logs.request_id.get(),
        )  # fmt: skip

    async def drain(self) -> None:
        """Close the Redis pool if this queue opened it; jobs already sent stay queued."""
        if self._owns_pool:
            await self.redis.aclose()
