from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.key_results.progress import manual_progress
from tests import factories
from tests.conftest import assert_problem


@pytest.fixture
async def objective(client: httpx.AsyncClient) -> dict[str, Any]:
    await factories.period(client, "2026-Q4")
    return await factories.objective(client, "2026-Q4")


class TestManualProgress:
    @pytest.mark.parametrize(
        ("start", "target", "current", "expected"),
        [
            (0, 100, 40, 0.4),
            (20, 70, 45, 0.5),
            (10, 2, 6, 0.5),  # a KR that counts down
            (10, 2, 12, 0.0),  # moved away from the target: clamped to 0
            (0, 100, 130, 1.0),  # overshoot: clamped to 1
            (-50, 50, 0, 0.5),
        ],
    )
    def test_formula_clamped_to_the_unit_interval(
        self, start: float, target: float, current: float, expected: float
    ) -> None:
        assert manual_progress(start=start, target=target, current=current) == pytest.approx(
            expected
        )


class TestKeyResultProgress:
    async def test_current_value_drives_progress_until_a_check_in_exists(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(
            client, objective["id"], start_value=20, target_value=70, current_value=45
        )
        assert kr["progress"] == pytest.approx(0.5)
        assert kr["last_check_in"] is None

    async def test_latest_check_in_by_date_wins_over_current_value_and_older_readings(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(client, objective["id"], target_value=100, current_value=90)
        now = datetime.now(UTC)
        url = f"/v1/key-results/{kr['id']}/check-ins"
        await client.post(url, json={"value": 30, "confidence": 0.7})
        # Backfilled afterwards, but dated earlier: it must not become the latest reading.
        backfill = (now - timedelta(days=30)).isoformat()
        await client.post(url, json={"value": 10, "created_at": backfill})
        got = (await client.get(f"/v1/key-results/{kr['id']}")).json()
        assert got["progress"] == pytest.approx(0.3)
        assert got["last_check_in"]["value"] == 30
        assert got["last_check_in"]["confidence"] == 0.7
        assert got["current_value"] == 90

    async def test_list_renders_each_key_results_own_latest_check_in(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        a = await factories.key_result(client, objective["id"], target_value=10)
        b = await factories.key_result(client, objective["id"], target_value=10)
        await client.post(f"/v1/key-results/{a['id']}/check-ins", json={"value": 2})
        await client.post(f"/v1/key-results/{b['id']}/check-ins", json={"value": 8})
        await client.post(f"/v1/key-results/{a['id']}/check-ins", json={"value": 4})
        items = (await client.get("/v1/key-results")).json()["items"]
        assert {i["id"]: i["progress"] for i in items} == {
            a["id"]: pytest.approx(0.4),
            b["id"]: pytest.approx(0.8),
        }

    async def test_linked_key_result_with_no_linked_work_has_made_no_progress(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(
            client, objective["id"], progress_mode="linked", progress_basis="points"
        )
        assert (kr["progress_mode"], kr["progress_basis"], kr["progress"]) == (
            "linked",
            "points",
            0.0,
        )


class TestKeyResultValidation:
    async def test_target_must_differ_from_start_on_create_and_update(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/v1/key-results",
            json={
                "objective_id": objective["id"],
                "title": "x",
                "start_value": 5,
                "target_value": 5,
            },
        )
        assert_problem(response, 422, "invalid-input")
        kr = await factories.key_result(client, objective["id"], start_value=0, target_value=10)
        response = await client.patch(f"/v1/key-results/{kr['id']}", json={"start_value": 10})
        assert_problem(response, 422, "invalid-input")
        assert (await client.get(f"/v1/key-results/{kr['id']}")).json()["start_value"] == 0

    async def test_non_finite_numbers_are_refused(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        raw = '{{"objective_id": "{}", "title": "x", "target_value": NaN}}'.format(objective["id"])
        response = await client.post(
            "/v1/key-results", content=raw, headers={"content-type": "application/json"}
        )
        assert_problem(response, 422, "invalid-input")

    async def test_unknown_objective_and_mode_are_invalid_input(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/v1/key-results",
            json={
                "objective_id": "0192d7c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
                "title": "x",
                "target_value": 1,
            },
        )
        assert_problem(response, 422, "invalid-input")
        response = await client.post(
            "/v1/key-results",
            json={
                "objective_id": objective["id"],
                "title": "x",
                "target_value": 1,
                "progress_mode": "vibes",
            },
        )
        assert_problem(response, 422, "invalid-input")

    async def test_filters_by_period_and_team_through_the_objective(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        await factories.team(client, "payments")
        team_objective = await factories.objective(client, "2026-Q4", team="payments")
        company_kr = await factories.key_result(client, objective["id"])
        team_kr = await factories.key_result(client, team_objective["id"])
        by_team = (await client.get("/v1/key-results", params={"team": "payments"})).json()
        assert [k["id"] for k in by_team["items"]] == [team_kr["id"]]
        by_period = (await client.get("/v1/key-results", params={"period": "2026-Q4"})).json()
        assert [k["id"] for k in by_period["items"]] == [company_kr["id"], team_kr["id"]]


class TestCheckIns:
    @pytest.mark.parametrize("confidence", [-0.1, 1.01])
    async def test_confidence_outside_0_1_is_refused(
        self, client: httpx.AsyncClient, objective: dict[str, Any], confidence: float
    ) -> None:
        kr = await factories.key_result(client, objective["id"])
        response = await client.post(
            f"/v1/key-results/{kr['id']}/check-ins", json={"value": 1, "confidence": confidence}
        )
        assert_problem(response, 422, "invalid-input")

    async def test_future_and_naive_dates_are_refused(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(client, objective["id"])
        url = f"/v1/key-results/{kr['id']}/check-ins"
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert_problem(
            await client.post(url, json={"value": 1, "created_at": future}), 422, "invalid-input"
        )
        naive = "2026-10-01T12:00:00"
        assert_problem(
            await client.post(url, json={"value": 1, "created_at": naive}), 422, "invalid-input"
        )
        assert (await client.get(url)).json()["items"] == []

    async def test_listed_most_recently_recorded_first_across_pages(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(client, objective["id"])
        url = f"/v1/key-results/{kr['id']}/check-ins"
        for value in range(5):
            await client.post(url, json={"value": value, "note": f"week {value}"})
        first = (await client.get(url, params={"limit": 3})).json()
        second = (await client.get(url, params={"limit": 3, "cursor": first["next_cursor"]})).json()
        values = [c["value"] for c in first["items"] + second["items"]]
        assert values == [4, 3, 2, 1, 0]
        assert second["next_cursor"] is None

    async def test_timestamps_come_back_in_utc(
        self, client: httpx.AsyncClient, objective: dict[str, Any]
    ) -> None:
        kr = await factories.key_result(client, objective["id"])
        made = (
            await client.post(
                f"/v1/key-results/{kr['id']}/check-ins",
                json={"value": 1, "created_at": "2026-10-05T09:30:00+02:00"},
            )
        ).json()
        assert made["created_at"] == "2026-10-05T07:30:00Z"
