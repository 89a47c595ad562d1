"""A small company to roll up: a team tree, a quarter, OKRs, and work in a tracker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from service.rollups.schemas import Rollup
from tests import factories
from tests.sync.helpers import connect, sync
from tests.tracker import FakeTracker

TEAM_MAP = {"PAY": "payments", "CHK": "checkout", "PLT": "platform"}


@dataclass
class World:
    connection_id: str
    krs: dict[str, dict[str, Any]]
    objectives: dict[str, dict[str, Any]]

    async def resync(self, admin: httpx.AsyncClient, mode: str = "incremental") -> None:
        run = await sync(admin, self.connection_id, mode)
        assert run["status"] == "succeeded", run["error"]


async def build(admin: httpx.AsyncClient, tracker: FakeTracker) -> World:
    """company > (payments > checkout), platform; quarter 2026-Q4; two objectives.

    Work (points in brackets), all times given with offsets the store must normalise:
      PAY-E1 epic, labels okr
        PAY-s1 done 2026-10-10 [3]
        PAY-s2 done 2026-12-31T23:59:59Z [5]          last second of the quarter
        PAY-s3 done 2026-12-31T23:30:00-02:00 [8]     = 2027-01-01T01:30Z: next quarter
        PAY-s4 dropped 2026-11-01 [13]                canceled
        PAY-s5 open, created 2026-10-02 [2]
      CHK-b1 bug done 2026-10-20T01:00:00+05:00 [1]   = 2026-10-19T20:00Z
      PLT-E2 epic
        PLT-t1 done 2026-11-02, no estimate
        PLT-t2 done 2026-11-03 [2], labels debt
      PLT-x1 done 2026-09-30T23:00:00-02:00 [1]       = 2026-10-01T01:00Z: in the quarter
    """
    company = await factories.team(admin, "company")
    payments = await factories.team(admin, "payments", parent="company")
    await factories.team(admin, "checkout", parent="payments")
    await factories.team(admin, "platform", parent="company", strategic_target=0.5)
    await factories.period(admin, "2026-Q4", "2026-10-01", "2027-01-01")
    grow = await factories.objective(admin, "2026-Q4", title="Grow revenue", team="company")
    pay = await factories.objective(
        admin, "2026-Q4", title="Faster checkout", team="payments", parent_id=grow["id"]
    )
    kr_conv = await factories.key_result(admin, pay["id"], title="Conversion +2pt")
    kr_rev = await factories.key_result(admin, grow["id"], title="Revenue 10M")
    tracker.add("E1", type="epic", project="PAY", labels=["okr"], key="PAY-E1")
    for item_id, state, finished, points in (
        ("s1", "done", "2026-10-10T12:00:00+00:00", 3),
        ("s2", "done", "2026-12-31T23:59:59+00:00", 5),
        ("s3", "done", "2026-12-31T23:30:00-02:00", 8),
        ("s4", "dropped", "2026-11-01T00:00:00+00:00", 13),
    ):
        tracker.add(item_id, key=f"PAY-{item_id}", parent="E1", state=state, finished=finished,
                    points=points, started="2026-10-05T00:00:00+00:00")  # fmt: skip
    tracker.add("s5", key="PAY-s5", parent="E1", state="open", points=2,
                created="2026-10-02T00:00:00+00:00")  # fmt: skip
    tracker.add("b1", key="CHK-b1", type="bug", project="CHK", state="done",
                finished="2026-10-20T01:00:00+05:00", points=1)  # fmt: skip
    tracker.add("E2", key="PLT-E2", type="epic", project="PLT")
    tracker.add("t1", key="PLT-t1", parent="E2", project="PLT", state="done",
                finished="2026-11-02T00:00:00+00:00")  # fmt: skip
    tracker.add("t2", key="PLT-t2", parent="E2", project="PLT", state="done", labels=["debt"],
                finished="2026-11-03T00:00:00+00:00", points=2)  # fmt: skip
    tracker.add("x1", key="PLT-x1", project="PLT", state="done", points=1,
                finished="2026-09-30T23:00:00-02:00")  # fmt: skip
    connection_id = await connect(admin, team_map=TEAM_MAP)
    world = World(
        connection_id,
        krs={"conversion": kr_conv, "revenue": kr_rev},
        objectives={"grow": grow, "pay": pay},
    )
    await world.resync(admin, "full")
    assert company
    assert payments
    return world


async def link(admin: httpx.AsyncClient, kr: dict[str, Any], key: str, weight: float = 1) -> Any:
    return await factories.created(
        admin.post(
            "/v1/links", json={"key_result_id": kr["id"], "work_item_key": key, "weight": weight}
        )
    )


async def rollup(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/rollups", params={"period": "2026-Q4", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # The router serialises the service's data without validating it: hold it to the schema.
    Rollup.model_validate(body, strict=False)
    assert set(body) == set(Rollup.model_fields)
    return body


def efforts(body: dict[str, Any]) -> dict[str, float]:
    return {name: c["effort"] for name, c in body["categories"].items()}
