"""Listing and reading synced work items."""

from __future__ import annotations

import httpx

from tests import factories
from tests.conftest import assert_problem
from tests.sync.helpers import connect, sync
from tests.tracker import FakeTracker


async def keys(client: httpx.AsyncClient, **params: object) -> list[str]:
    page = (await client.get("/v1/work-items", params={"limit": 200, **params})).json()
    return sorted(i["key"] for i in page["items"])


class TestListWorkItems:
    async def test_filters(self, admin: httpx.AsyncClient, tracker: FakeTracker) -> None:
        await factories.team(admin, "payments")
        tracker.add("E1", type="epic", title="Faster checkout")
        tracker.add("1", parent="E1", state="done", title="Wallet support")
        tracker.add("2", parent="E1", state="doing")
        tracker.add("3", project="OPS", state="dropped")
        connection_id = await connect(admin)
        await sync(admin, connection_id, "full")
        assert await keys(admin, kind="epic") == ["PAY-E1"]
        assert await keys(admin, status_category="canceled") == ["PAY-3"]
        assert await keys(admin, team="payments") == ["PAY-1", "PAY-2", "PAY-E1"]
        assert await keys(admin, q="wallet") == ["PAY-1"]
        assert await keys(admin, connection="tracker") == ["PAY-1", "PAY-2", "PAY-3", "PAY-E1"]
        epic = (await admin.get("/v1/work-items/PAY-E1")).json()
        assert await keys(admin, parent_id=epic["id"]) == ["PAY-1", "PAY-2"]

    async def test_a_listed_item_reads_as_the_item_itself_does(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        # The list is serialised from plain rows, the item from its model: the same fields,
        # values and formats (UTC as "Z", microseconds, nulls, lists, the default category).
        await factories.team(admin, "payments")
        tracker.add("E1", type="epic", labels=["okr", "q4"], created="2026-10-02T03:04:05.123456Z")
        tracker.add("1", parent="E1", state="done", points=3, finished="2026-10-10T12:00:00-02:00")
        tracker.add("2", parent="E1", state="doing", project="OPS")
        await sync(admin, await connect(admin), "full")
        page = (await admin.get("/v1/work-items", params={"limit": 2})).json()
        rest = (await admin.get("/v1/work-items", params={"cursor": page["next_cursor"]})).json()
        assert rest["next_cursor"] is None
        listed = page["items"] + rest["items"]
        assert len(listed) == 3
        for item in listed:
            one = (await admin.get(f"/v1/work-items/{item['id']}")).json()
            assert list(item) == [k for k in one if k not in ("links", "why")]
            assert item == {k: v for k, v in one.items() if k not in ("links", "why")}
        assert {i["category"] for i in listed} == {"heartbeat"}
        assert any(i["team"] == "payments" and i["parent"] == "PAY-E1" for i in listed)

    async def test_unknown_filter_values_are_invalid_input(self, admin: httpx.AsyncClient) -> None:
        assert_problem(
            await admin.get("/v1/work-items", params={"kind": "story"}), 422, "invalid-input"
        )
        assert_problem(
            await admin.get("/v1/work-items", params={"team": "ghost"}), 422, "invalid-input"
        )


class TestGetWorkItem:
    async def test_by_id_or_key_and_ambiguous_keys_need_the_id(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        tracker.add("1")
        first = await connect(admin, "site-a")
        second = await connect(admin, "site-b")
        await sync(admin, first, "full")
        ambiguous = await admin.get("/v1/work-items/PAY-1")
        assert (await admin.get("/v1/work-items/PAY-1")).json()["connection_id"] == first
        await sync(admin, second, "full")
        assert_problem(await admin.get("/v1/work-items/PAY-1"), 409, "conflict")
        by_id = (await admin.get(f"/v1/work-items/{ambiguous.json()['id']}")).json()
        assert by_id["key"] == "PAY-1"
        assert_problem(await admin.get("/v1/work-items/PAY-404"), 404, "not-found")
