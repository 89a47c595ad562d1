"""The FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from connectors import discover
from service import health, openapi, tracing
from service.auth import router as tokens
from service.auth import service as auth
from service.auth.dependencies import SECURITY_SCHEMES
from service.connections import router as connections
from service.db import Database
from service.errors import install_error_handlers
from service.hooks import router as hooks
from service.insights import router as insights
from service.key_results import router as key_results
from service.links import router as links
from service.logs import RequestIdMiddleware
from service.metrics import HttpMetrics, MetricsMiddleware
from service.nul_guard import NulGuardMiddleware
from service.objectives import router as objectives
from service.periods import router as periods
from service.rollups import router as rollups
from service.rules import router as rules
from service.services import open_services
from service.settings import Settings, get_settings
from service.sync import router as sync_runs
from service.teams import router as teams
from service.webhooks import router as webhook_endpoints
from service.work_items import router as work_items
from service.worker.arq_queue import ArqQueue
from service.worker.inprocess import InProcessQueue, every

logger = logging.getLogger(__name__)

DESCRIPTION = """
How much of the work your teams do rolls up to strategy, and how much is heartbeat work?

Authenticate with `Authorization: Bearer <token>`. A `read` token may GET; `write` may also
change OKRs, links and rules; `admin` may also manage connections, tokens and webhook
endpoints. Each operation names the scope it needs in `x-required-scope`.
Errors are RFC 9457 `application/problem+json`.
"""


# The order the documentation lists operations in: what a reader sets up first.
OPENAPI_TAGS = (
    "operations", "teams", "periods", "objectives", "key results", "tokens", "connections",
    "syncs", "work items", "webhooks", "links", "rules", "roll-ups", "insights",
    "webhook endpoints",
)  # fmt: skip

SCHEDULE_EVERY = 60.0
RESUME_EVERY = 300.0
# Retries fall due between changes; the scans catch grace periods that end with no write.
DELIVER_EVERY = 5.0
PROCESS_EVERY = 30.0  # inbound deliveries whose job was lost with a crash
SCAN_EVERY = 60.0
COMPACT_EVERY = 20.0
DAILY = 24 * 3600.0


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    queue: InProcessQueue | ArqQueue | None = None,
    tracer_provider: Any = None,
) -> FastAPI:
    """Build the app; ``database``, ``queue`` and ``tracer_provider`` replace the ones from
    settings (tests)."""
    settings = settings or get_settings()
    if tracer_provider is None and settings.tracing:
        tracer_provider = tracing.provider()
    # Discovered now, not at first use: a broken plugin stops the start, loudly.
    registry = discover()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs: InProcessQueue | ArqQueue
        if queue is not None:
            jobs = queue
        elif settings.redis_url:
            jobs = await ArqQueue.connect(settings.redis_url, queue_name=settings.queue_name)
        else:
            jobs = InProcessQueue()
        async with open_services(
            settings, queue=jobs, database=database, registry=registry
        ) as services:
            app.state.services = services
            if tracer_provider is not None:
                tracing.instrument_clients(services.db.engine, tracer_provider)
            if settings.bootstrap_token is not None:
                async with services.db.transaction() as session:
                    token = settings.bootstrap_token.get_secret_value()
                    if await auth.register_bootstrap_token(session=session, token=token):
                        logger.info("token.bootstrap_registered")
            periodic: list[asyncio.Task[None]] = []
            # With arq, the workers' cron does this; in-process, the server does.
            if isinstance(jobs, InProcessQueue) and not jobs.eager:
                await jobs.enqueue("resume_interrupted_syncs")
                await jobs.enqueue("process_webhooks")
                periodic = [
                    asyncio.create_task(every(jobs, "schedule_due_syncs", SCHEDULE_EVERY)),
                    asyncio.create_task(every(jobs, "resume_interrupted_syncs", RESUME_EVERY)),
                    asyncio.create_task(every(jobs, "deliver_webhooks", DELIVER_EVERY)),
                    asyncio.create_task(every(jobs, "process_webhooks", PROCESS_EVERY)),
                    asyncio.create_task(every(jobs, "scan_events", SCAN_EVERY)),
                    asyncio.create_task(every(jobs, "compact_rollup_cells", COMPACT_EVERY)),
                    asyncio.create_task(every(jobs, "scan_stale_key_results", DAILY)),
                    asyncio.create_task(every(jobs, "prune_history", DAILY)),
                ]
            try:
                yield
            finally:
                for task in periodic:
                    task.cancel()
                await jobs.drain()

    app = FastAPI(
        title="okr-sync",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[{"name": tag} for tag in OPENAPI_TAGS],
    )
    metrics_registry = CollectorRegistry()
    app.state.metrics_registry = metrics_registry
    install_error_handlers(app)
    openapi.install(app, SECURITY_SCHEMES)
    # A request is matched against the routers in this order, at a few microseconds a
    # route (about 0.1 ms for one near the end), so the busiest come first. No two routers
    # share a path (tests/test_routes.py), so the order changes no request's route; the
    # documentation keeps its own order (OPENAPI_TAGS).
    for module in (
        rollups,
        work_items,
        links,
        hooks,
        health,
        teams,
        periods,
        objectives,
        key_results,
        tokens,
        connections,
        sync_runs,
        rules,
        insights,
        webhook_endpoints,
    ):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(metrics_registry))
    # Outermost: the id is set before anything else logs, and on every answer.
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if tracer_provider is not None:
        tracing.instrument_app(app, tracer_provider)
    return app
