from __future__ import annotations

import httpx

from tests import factories
from tests.conftest import assert_problem


class TestPeriods:
    async def test_a_period_must_end_after_it_starts(self, client: httpx.AsyncClient) -> None:
        for end in ("2026-10-01", "2026-09-30"):
            response = await client.post(
                "/v1/periods", json={"name": "bad", "start": "2026-10-01", "end": end}
            )
            body = assert_problem(response, 422, "invalid-input")
            assert "end after it starts" in body["detail"]

    async def test_update_cannot_make_a_period_end_before_it_starts(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "2026-Q4", "2026-10-01", "2027-01-01")
        response = await client.patch("/v1/periods/2026-Q4", json={"start": "2027-02-01"})
        assert_problem(response, 422, "invalid-input")
        assert (await client.get("/v1/periods/2026-Q4")).json()["start"] == "2026-10-01"

    async def test_named_by_name_or_id_in_paths(self, client: httpx.AsyncClient) -> None:
        made = await factories.period(client, "2026-Q4")
        assert (await client.get("/v1/periods/2026-Q4")).json() == made
        assert (await client.get(f"/v1/periods/{made['id']}")).json() == made

    async def test_duplicate_name_is_a_conflict(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "2026-Q4")
        response = await client.post(
            "/v1/periods", json={"name": "2026-Q4", "start": "2026-01-01", "end": "2026-02-01"}
        )
        assert_problem(response, 409, "conflict")

    async def test_contains_filter_treats_the_end_as_exclusive(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "Q3", "2026-07-01", "2026-10-01")
        await factories.period(client, "Q4", "2026-10-01", "2027-01-01")
        found = (await client.get("/v1/periods", params={"contains": "2026-10-01"})).json()
        assert [p["name"] for p in found["items"]] == ["Q4"]

    async def test_period_with_objectives_is_kept_with_409(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "2026-Q4")
        await factories.objective(client, "2026-Q4")
        assert_problem(await client.delete("/v1/periods/2026-Q4"), 409, "conflict")
        await factories.period(client, "empty")
        assert (await client.delete("/v1/periods/empty")).status_code == 204
