from __future__ import annotations

import httpx
import pytest

from tests import factories
from tests.conftest import assert_problem


class TestCreateObjective:
    async def test_period_and_team_by_natural_key(self, client: httpx.AsyncClient) -> None:
        period = await factories.period(client, "2026-Q4")
        team = await factories.team(client, "payments")
        made = await factories.objective(client, "2026-Q4", team="payments")
        assert (made["period_id"], made["period"]) == (period["id"], "2026-Q4")
        assert (made["team_id"], made["team"]) == (team["id"], "payments")

    async def test_without_team_it_is_company_level(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "2026-Q4")
        made = await factories.objective(client, "2026-Q4")
        assert made["team"] is None
        assert made["team_id"] is None

    async def test_a_period_is_required_and_must_exist(self, client: httpx.AsyncClient) -> None:
        missing = await client.post("/v1/objectives", json={"title": "No period"})
        assert_problem(missing, 422, "invalid-input")
        unknown = await client.post("/v1/objectives", json={"title": "x", "period": "1999-Q1"})
        body = assert_problem(unknown, 422, "invalid-input")
        assert body["errors"][0]["loc"] == ["body", "period"]

    async def test_unknown_parent_objective_is_invalid_input(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "2026-Q4")
        response = await client.post(
            "/v1/objectives",
            json={
                "title": "x",
                "period": "2026-Q4",
                "parent_id": "0192d7c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            },
        )
        assert_problem(response, 422, "invalid-input")


class TestAlignment:
    async def test_an_objective_cannot_align_to_its_own_descendant(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "2026")
        top = await factories.objective(client, "2026")
        mid = await factories.objective(client, "2026", parent_id=top["id"])
        low = await factories.objective(client, "2026", parent_id=mid["id"])
        response = await client.patch(f"/v1/objectives/{top['id']}", json={"parent_id": low["id"]})
        assert_problem(response, 422, "invalid-input")
        itself = await client.patch(f"/v1/objectives/{top['id']}", json={"parent_id": top["id"]})
        assert_problem(itself, 422, "invalid-input")

    async def test_objective_others_align_to_is_kept_with_409(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "2026")
        top = await factories.objective(client, "2026")
        await factories.objective(client, "2026", parent_id=top["id"])
        assert_problem(await client.delete(f"/v1/objectives/{top['id']}"), 409, "conflict")


class TestObjectiveProgress:
    async def test_no_key_results_means_no_progress(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "2026-Q4")
        made = await factories.objective(client, "2026-Q4")
        assert made["progress"] is None
        assert made["key_results"] == 0

    async def test_progress_is_the_mean_of_its_key_results(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "2026-Q4")
        objective = await factories.objective(client, "2026-Q4")
        await factories.key_result(client, objective["id"], target_value=10, current_value=5)
        await factories.key_result(client, objective["id"], target_value=100, current_value=100)
        await factories.key_result(client, objective["id"], target_value=4, current_value=-3)
        got = (await client.get(f"/v1/objectives/{objective['id']}")).json()
        assert got["key_results"] == 3
        assert got["progress"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
        listed = (await client.get("/v1/objectives")).json()["items"]
        assert listed[0]["progress"] == pytest.approx(0.5)


class TestListAndDelete:
    async def test_filters_by_period_team_and_level(self, client: httpx.AsyncClient) -> None:
        await factories.period(client, "Q3")
        await factories.period(client, "Q4")
        await factories.team(client, "payments")
        company = await factories.objective(client, "Q4")
        payments = await factories.objective(client, "Q4", team="payments")
        await factories.objective(client, "Q3", team="payments")

        async def ids(**params: object) -> list[str]:
            page = (await client.get("/v1/objectives", params=params)).json()
            return [o["id"] for o in page["items"]]

        assert await ids(period="Q4") == [company["id"], payments["id"]]
        assert await ids(period="Q4", team="payments") == [payments["id"]]
        assert await ids(period="Q4", company_level=True) == [company["id"]]

    async def test_delete_takes_key_results_and_check_ins_with_it(
        self, client: httpx.AsyncClient
    ) -> None:
        await factories.period(client, "2026-Q4")
        objective = await factories.objective(client, "2026-Q4")
        kr = await factories.key_result(client, objective["id"])
        await client.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 3})
        assert (await client.delete(f"/v1/objectives/{objective['id']}")).status_code == 204
        assert_problem(await client.get(f"/v1/key-results/{kr['id']}"), 404, "not-found")
        assert_problem(await client.get(f"/v1/key-results/{kr['id']}/check-ins"), 404, "not-found")
