"""The arq worker: ``okr-sync worker`` runs the job functions from Redis.

Every job takes ids and re-reads state, so arq's at-least-once delivery is harmless: a sync
run is leased, and resumes from its checkpoint if a worker died under it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, cast

from arq import Retry, cron
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from service import logs, telemetry, tracing
from service.services import open_services
from service.settings import Settings, get_settings
from service.worker.arq_queue import ArqQueue
from service.worker.jobs import JOBS, MAX_TRIES
from service.worker.retry import RetryLater

# One invocation of a job may run this long; a longer sync continues in the next
# invocation from its checkpoint.
JOB_TIMEOUT = 30 * 60


def _adapt(name: str, job: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    async def run(ctx: dict[Any, Any], *args: Any, request_id: str | None = None) -> None:
        token = logs.request_id.set(request_id)
        try:
            with telemetry.job_run(name):
                await job(ctx["services"], *args)
        except RetryLater as retry:
            raise Retry(defer=retry.defer) from retry
        finally:
            logs.request_id.reset(token)

    run.__qualname__ = run.__name__ = name
    return cast(WorkerCoroutine, run)


def functions() -> list[Function]:
    return [
        func(_adapt(name, job), name=name, keep_result=0, max_tries=MAX_TRIES, timeout=JOB_TIMEOUT)
        for name, job in JOBS.items()
    ]


def cron_jobs() -> list[CronJob]:
    return [
        cron(_adapt("schedule_due_syncs", JOBS["schedule_due_syncs"]), second=0),
        # Cheap (one query), and what brings a dead worker's run back soon after its lease.
        cron(
            _adapt("resume_interrupted_syncs", JOBS["resume_interrupted_syncs"]),
            second={0, 15, 30, 45},
            run_at_startup=True,
        ),
        # Retries fall due between writes; claims keep two workers off one message.
        cron(
            _adapt("deliver_webhooks", JOBS["deliver_webhooks"]),
            second=set(range(0, 60, 5)),
            run_at_startup=True,
        ),
        # Deliveries stored but never applied (a server that died between its answer and
        # its job, a job lost from Redis) are applied within half a minute.
        cron(
            _adapt("process_webhooks", JOBS["process_webhooks"]),
            second={10, 40},
            run_at_startup=True,
        ),
        cron(_adapt("scan_events", JOBS["scan_events"]), second=30),
        cron(_adapt("compact_rollup_cells", JOBS["compact_rollup_cells"]), second={0, 20, 40}),
        cron(_adapt("prune_history", JOBS["prune_history"]), hour=5, minute=30),
        cron(_adapt("scan_stale_key_results", JOBS["scan_stale_key_results"]), hour=6, minute=0),
    ]


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    stack = AsyncExitStack()
    queue = ArqQueue(ctx["redis"], queue_name=ctx["queue_name"])
    ctx["services"] = await stack.enter_async_context(open_services(settings, queue=queue))
    ctx["stack"] = stack
    if settings.tracing:
        tracing.instrument_clients(ctx["services"].db.engine, tracing.provider())


async def _shutdown(ctx: dict[str, Any]) -> None:
    if "stack" in ctx:
        await ctx["stack"].aclose()


def worker_options(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``, built from settings at run time."""
    settings = settings or get_settings()
    queue_name = settings.queue_name
    if not settings.redis_url:
        raise RuntimeError("OKR_SYNC_REDIS_URL is not set: without Redis, jobs run in the server")
    return {
        "functions": functions(),
        "cron_jobs": cron_jobs(),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": queue_name,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "ctx": {"settings": settings, "queue_name": queue_name},
        "job_timeout": JOB_TIMEOUT,
        "max_tries": MAX_TRIES,
        # On SIGTERM: take no new job, let running ones finish this long, then cancel them;
        # a cancelled sync hands its run back and arq queues the job again.
        "job_completion_wait": settings.worker_shutdown_wait_seconds,
    }


def __getattr__(name: str) -> Any:
    """``WorkerSettings`` for arq's own command line (``arq service.worker.arq_worker.
    WorkerSettings``), built when asked for, from the settings of that moment."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_options())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
