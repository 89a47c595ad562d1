"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service import health
from service.auth import router as tokens
from service.auth import service as auth
from service.db import Database
from service.errors import install_error_handlers
from service.key_results import router as key_results
from service.metrics import HttpMetrics, MetricsMiddleware
from service.objectives import router as objectives
from service.periods import router as periods
from service.settings import Settings, get_settings
from service.teams import router as teams

logger = logging.getLogger(__name__)

DESCRIPTION = """
How much of the work your teams do rolls up to strategy, and how much is heartbeat work?

Authenticate with `Authorization: Bearer <token>`. A `read` token may GET; `write` may also
change OKRs, links and rules; `admin` may also manage connections, tokens and webhook
endpoints. Each operation names the scope it needs in `x-required-scope`.
Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the app; ``database`` replaces the one built from settings (tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or Database.from_url(settings.effective_database_url)
        app.state.db = db
        if settings.bootstrap_token is not None:
            async with db.transaction() as session:
                token = settings.bootstrap_token.get_secret_value()
                if await auth.register_bootstrap_token(session=session, token=token):
                    logger.info("token.bootstrap_registered")
        try:
            yield
        finally:
            if database is None:
                await db.dispose()

    app = FastAPI(
        title="okr-sync",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if database is not None:
        app.state.db = database
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    install_error_handlers(app)
    for module in (health, teams, periods, objectives, key_results, tokens):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    return app
