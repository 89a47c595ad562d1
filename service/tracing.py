"""Optional OpenTelemetry tracing: ``pip install 'okr-sync[otel]'`` and ``OKR_SYNC_TRACING=true``.

Spans for every HTTP request served, every SQL statement and every outgoing HTTP call
(providers, webhook receivers), exported over OTLP/HTTP to wherever the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` points (``OTEL_SERVICE_NAME`` names the service).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

# Probes and scrapes would drown the traces that matter.
EXCLUDED_URLS = "healthz,readyz,metrics"


class TracingUnavailable(RuntimeError):
    pass


def provider(exporter: Any = None, *, make_global: bool = True) -> Any:
    """A tracer provider exporting to ``exporter`` (OTLP/HTTP when None)."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            "OKR_SYNC_TRACING needs the otel extra: pip install 'okr-sync[otel]'"
        ) from exc
    made = TracerProvider(resource=Resource.create({"service.name": "okr-sync"}))
    if exporter is None:
        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        made.add_span_processor(SimpleSpanProcessor(exporter))
    if make_global:
        trace.set_tracer_provider(made)
    return made


def instrument_app(app: FastAPI, tracer_provider: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, excluded_urls=EXCLUDED_URLS
    )


def instrument_clients(engine: AsyncEngine, tracer_provider: Any) -> None:
    """SQL statements on ``engine`` and every httpx client of the process."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
    # The instrumentor declares SQLAlchemy below 2.1 and would silently do nothing on 2.1; its
    # engine events are unchanged in 2.1, and tests/test_tracing.py checks the spans arrive.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=tracer_provider, skip_dep_check=True
    )


def uninstrument_clients() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    SQLAlchemyInstrumentor().uninstrument()
