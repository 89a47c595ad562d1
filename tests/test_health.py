from __future__ import annotations

from pathlib import Path

import httpx

from service.app import create_app
from service.db import Database
from service.settings import Settings
from tests.conftest import assert_problem


class TestProbes:
    async def test_healthz_and_readyz_answer_when_the_database_does(
        self, anonymous: httpx.AsyncClient
    ) -> None:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        assert (await anonymous.get("/readyz")).json() == {"status": "ready"}

    async def test_readyz_is_503_when_the_database_is_unreachable(self, tmp_path: Path) -> None:
        # Nothing listens on port 1: the connection is refused at once.
        unreachable = Database.from_url("postgresql://nobody@127.0.0.1:1/none")
        app = create_app(Settings(data_dir=tmp_path), database=unreachable)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            assert (await client.get("/healthz")).status_code == 200
            assert_problem(await client.get("/readyz"), 503, "internal-error")
        await unreachable.dispose()


class TestMetrics:
    async def test_requests_are_counted_by_route_template_not_raw_path(
        self, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        await client.get("/v1/teams/alpha")
        await client.get("/v1/teams/beta")
        text = (await anonymous.get("/metrics")).text
        assert (
            'okr_sync_http_requests_total{method="GET",route="/v1/teams/{team}",status="404"} 2.0'
            in text
        )
        assert "alpha" not in text
        assert (
            'okr_sync_http_request_duration_seconds_count{method="GET",route="/v1/teams/{team}"}'
            in text
        )
