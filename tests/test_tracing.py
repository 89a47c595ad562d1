"""Optional OpenTelemetry tracing: requests, SQL and outgoing HTTP become spans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import tracing
from service.app import create_app
from service.db import create_engine
from service.migrate import upgrade
from service.settings import Settings
from service.worker.inprocess import InProcessQueue


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


TOKEN = "tracing-admin-token-" + "0" * 24


@pytest.fixture
async def traced(tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[Any]:
    """The app on a database of its own, so that its engine is instrumented before it opens a
    connection, as in a real start."""
    url = f"sqlite:///{tmp_path / 'traced.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url, bootstrap_token=TOKEN)
    provider = tracing.provider(spans, make_global=False)
    application = create_app(settings, queue=InProcessQueue(eager=True), tracer_provider=provider)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        tracing.uninstrument_clients()


async def test_a_request_is_traced_with_its_sql(traced: Any, spans: InMemorySpanExporter) -> None:
    transport = httpx.ASGITransport(app=traced)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://okr-sync.test", headers=headers
    ) as client:
        assert (await client.get("/v1/teams")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    server = [s for s in finished if s.name == "GET /v1/teams"]
    assert server, names
    sql = [s for s in finished if s.attributes and "db.statement" in s.attributes]
    assert sql, names
    # The statements ran inside the request's trace.
    assert {s.context.trace_id for s in sql} & {s.context.trace_id for s in server}
    assert not any("healthz" in n for n in names)


def test_without_the_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with pytest.raises(tracing.TracingUnavailable, match=r"okr-sync\[otel\]"):
        tracing.provider()


def test_tracing_is_off_unless_asked(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).tracing is False
