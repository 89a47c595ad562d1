"""OKR health findings, each naming what it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests import factories
from tests.conftest import assert_problem
from tests.portfolio.world import build, link
from tests.tracker import FakeTracker


async def insights(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/insights", params={"period": "2026-Q4", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def of_type(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in body["findings"] if f["type"] == kind]


async def test_each_failure_mode_is_found_with_its_entities(
    admin: httpx.AsyncClient, reader: httpx.AsyncClient, tracker: FakeTracker
) -> None:
    world = await build(admin, tracker)
    # Platform: six objectives (one more than the default limit), none aligned. The
    # company's own objective is a root team's, with nothing above it to align to.
    for n in range(6):
        await factories.objective(admin, "2026-Q4", title=f"Platform {n}", team="platform")
    await link(admin, world.krs["revenue"], "PAY-E1")
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    await admin.post(
        f"/v1/key-results/{world.krs['revenue']['id']}/check-ins",
        json={"value": 10, "created_at": old},
    )
    body = await insights(reader)
    assert body["counts"] == {
        "objective_not_aligned": 6,
        "too_many_objectives": 1,
        "key_result_without_initiatives": 1,
        "stale_key_result": 1,
        "unlinked_epic": 1,
        "strategic_share_below_target": 1,
    }
    crowded = of_type(body, "too_many_objectives")[0]
    assert crowded["team"]["key"] == "platform"
    assert crowded["details"]["count"] == 6
    assert [f["key_result"]["title"] for f in of_type(body, "key_result_without_initiatives")] == [
        "Conversion +2pt"
    ]
    # Conversion has no check-in either, but was created today: not stale yet.
    stale = {f["key_result"]["title"]: f["details"] for f in of_type(body, "stale_key_result")}
    assert list(stale) == ["Revenue 10M"]
    assert stale["Revenue 10M"]["days"] == 30
    assert [f["work_item"]["key"] for f in of_type(body, "unlinked_epic")] == ["PLT-E2"]
    below = of_type(body, "strategic_share_below_target")[0]
    assert below["team"]["key"] == "platform"
    assert (below["details"]["share"], below["details"]["target"]) == (0.0, 0.5)


async def test_scoped_to_a_team_subtree_and_limited_per_type(
    admin: httpx.AsyncClient, tracker: FakeTracker
) -> None:
    await build(admin, tracker)
    for n in range(3):
        await factories.objective(admin, "2026-Q4", title=f"Checkout {n}", team="checkout")
    body = await insights(admin, team="payments", limit=2)
    assert body["counts"]["objective_not_aligned"] == 3
    assert len(of_type(body, "objective_not_aligned")) == 2
    assert {f["team"]["key"] for f in of_type(body, "objective_not_aligned")} == {"checkout"}
    # PLT-E2 belongs to platform, outside the scope.
    assert [f["work_item"]["key"] for f in of_type(body, "unlinked_epic")] == ["PAY-E1"]
    # A link on the epic clears the finding and lifts platform over its target.
    kr = await factories.key_result(admin, (await factories.objective(admin, "2026-Q4"))["id"])
    await link(admin, kr, "PLT-E2")
    everything = await insights(admin)
    assert [f["work_item"]["key"] for f in of_type(everything, "unlinked_epic")] == ["PAY-E1"]
    assert "strategic_share_below_target" not in everything["counts"]  # 2 of 3 is over 0.5


async def test_unknown_period_is_refused(admin: httpx.AsyncClient) -> None:
    assert_problem(await admin.get("/v1/insights?period=nope"), 422, "invalid-input")
