"""Roll-ups through the API over synced work: DESIGN section 3, item by item."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import fetch_rows
from service.key_results.repository import progress_inputs
from service.key_results.service import progress_from
from service.models import KeyResult, KeyResultEffort
from tests import factories
from tests.conftest import assert_problem
from tests.portfolio.world import build, efforts, link, rollup
from tests.tracker import FakeTracker


async def classify(
    admin: httpx.AsyncClient, category: str, priority: int = 0, **match: list[str]
) -> dict[str, Any]:
    body = {"match": match, "category": category, "priority": priority}
    return await factories.created(admin.post("/v1/classification-rules", json=body))


class TestWhichLeavesCount:
    async def test_done_leaves_resolved_in_the_period_with_its_end_exclusive_in_utc(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        body = await rollup(admin)
        # s1, s2 (last second), b1 (+05:00), t1, t2, x1 (-02:00 on Sep 30 is Oct 1 UTC);
        # not s3 (-02:00 on Dec 31 is Jan 1 UTC), the canceled s4, the open s5, or epics.
        assert body["total"] == 6.0
        assert efforts(body) == {"strategic": 0.0, "improvement": 0.0, "heartbeat": 6.0}
        assert body["categories"]["heartbeat"]["share"] == 1.0
        assert body["period"]["name"] == "2026-Q4"
        assert body["team"] is None

    async def test_include_open_adds_open_leaves_created_before_the_end(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        assert (await rollup(admin, include_open="true"))["total"] == 7.0

    async def test_parents_do_not_count_and_a_childless_parent_is_a_leaf(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        for child in ("t1", "t2"):
            tracker.delete(child)
        tracker.touch("E2", state="done", finished="2026-11-10T00:00:00+00:00", points=20)
        await world.resync(admin, "full")
        epic = (await admin.get("/v1/work-items/PLT-E2")).json()
        assert epic["is_leaf"] is True
        # E2 is now a leaf of its own: 20 points replace t1 (none) and t2 (2).
        assert (await rollup(admin, basis="points"))["total"] == 8 + 1 + 1 + 20

    async def test_points_count_estimates_and_report_leaves_without_one(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        body = await rollup(admin, basis="points")
        assert body["total"] == 3 + 5 + 1 + 0 + 2 + 1
        assert body["unestimated_items"] == 1  # t1
        assert body["categories"]["heartbeat"]["items"] == 6

    async def test_days_count_time_inside_the_period_canceled_work_included(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        body = await rollup(admin, basis="days", team="payments")
        start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        began = datetime(2026, 10, 5, tzinfo=UTC)

        def days(a: datetime, b: datetime) -> float:
            return (min(b, end) - max(a, start)).total_seconds() / 86400

        expected = (
            days(began, datetime(2026, 10, 10, 12, tzinfo=UTC))  # s1
            + days(began, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))  # s2
            + days(began, end)  # s3 resolved after the end: cut there
            + days(began, datetime(2026, 11, 1, tzinfo=UTC))  # s4 canceled, still worked
            + days(datetime(2026, 10, 2, tzinfo=UTC), end)  # s5 open: until the end
            + days(tracker_created(tracker, "b1"), datetime(2026, 10, 19, 20, tzinfo=UTC))
        )
        assert body["total"] == pytest.approx(expected, abs=1e-6)
        assert body["categories"]["heartbeat"]["items"] == 6


def tracker_created(tracker: FakeTracker, item_id: str) -> datetime:
    return datetime.fromisoformat(tracker.items[item_id]["created"])


class TestLinksAndRules:
    async def test_links_split_effort_by_weight_across_key_results(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1", weight=3)
        await link(admin, world.krs["revenue"], "PAY-E1", weight=1)
        body = await rollup(admin, basis="points")
        assert efforts(body) == {"strategic": 8.0, "improvement": 0.0, "heartbeat": 4.0}
        objectives = {o["title"]: o for o in body["objectives"]}
        pay = objectives["Faster checkout"]
        assert (pay["effort"], pay["share"]) == (6.0, 0.5)
        assert pay["key_results"][0]["title"] == "Conversion +2pt"
        assert pay["key_results"][0]["effort"] == 6.0
        assert objectives["Grow revenue"]["effort"] == 2.0
        assert [o["title"] for o in body["objectives"]] == ["Faster checkout", "Grow revenue"]

    async def test_the_nearest_linked_item_on_the_way_up_decides(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["conversion"], "PAY-E1")
        await link(admin, world.krs["revenue"], "PAY-s1")
        s1 = (await admin.get("/v1/work-items/PAY-s1")).json()
        s2 = (await admin.get("/v1/work-items/PAY-s2")).json()
        assert [lk["key_result"] for lk in s1["links"]] == ["Revenue 10M"]
        assert s1["why"]["source"] == "links"
        assert s1["why"]["item"]["key"] == "PAY-s1"
        assert [(lk["key_result"], lk["share"]) for lk in s2["links"]] == [("Conversion +2pt", 1.0)]
        assert s2["why"]["item"]["key"] == "PAY-E1"
        assert "ancestor PAY-E1" in s2["why"]["explanation"]

    async def test_classification_rules_by_priority_then_nearest_item(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        # On the epic, at high priority: beats a lower-priority rule that matches t2 itself.
        epic_rule = await classify(admin, "improvement", 10, containers=["PLT"], kinds=["epic"])
        await classify(admin, "heartbeat", 1, labels=["debt"])
        t2 = (await admin.get("/v1/work-items/PLT-t2")).json()
        assert t2["category"] == "improvement"
        assert (t2["why"]["source"], t2["why"]["item"]["key"]) == ("rule", "PLT-E2")
        assert t2["why"]["rule"]["id"] == epic_rule["id"]
        body = await rollup(admin)
        assert efforts(body) == {"strategic": 0.0, "improvement": 2.0, "heartbeat": 4.0}
        # Lower the epic rule below the label rule: t2 is now decided by its own label.
        response = await admin.patch(
            f"/v1/classification-rules/{epic_rule['id']}", json={"priority": 0}
        )
        assert response.status_code == 200, response.text
        t2 = (await admin.get("/v1/work-items/PLT-t2")).json()
        assert (t2["category"], t2["why"]["item"]["key"]) == ("heartbeat", "PLT-t2")
        assert efforts(await rollup(admin))["improvement"] == 1.0  # t1 still via the epic
        # Delete it: t1 falls back to the default.
        await admin.delete(f"/v1/classification-rules/{epic_rule['id']}")
        t1 = (await admin.get("/v1/work-items/PLT-t1")).json()
        assert (t1["category"], t1["why"]["source"]) == ("heartbeat", "default")

    async def test_links_beat_classification(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await classify(admin, "improvement", 100, containers=["PLT"])
        await link(admin, world.krs["revenue"], "PLT-E2")
        body = await rollup(admin)
        assert efforts(body) == {"strategic": 2.0, "improvement": 1.0, "heartbeat": 3.0}

    async def test_link_rules_apply_to_stored_items_and_to_items_as_they_sync(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        rule = await factories.created(
            admin.post(
                "/v1/link-rules",
                json={"match": {"labels": ["OKR"]}, "key_result_id": world.krs["revenue"]["id"]},
            )
        )
        links = (await admin.get("/v1/links", params={"origin": "rule"})).json()["items"]
        assert [(lk["work_item_key"], lk["link_rule_id"]) for lk in links] == [
            ("PAY-E1", rule["id"])
        ]
        assert efforts(await rollup(admin))["strategic"] == 2.0
        tracker.add("E3", key="PAY-E3", type="epic", labels=["okr"])
        tracker.add("s6", key="PAY-s6", parent="E3", state="done", finished="2026-10-11T00:00:00Z")
        await world.resync(admin)
        assert efforts(await rollup(admin))["strategic"] == 3.0
        # The item loses the label at the provider: the rule's link goes.
        tracker.touch("E3", labels=[])
        await world.resync(admin)
        assert efforts(await rollup(admin))["strategic"] == 2.0
        # Deleting the rule removes its links and their effect.
        assert (await admin.delete(f"/v1/link-rules/{rule['id']}")).status_code == 204
        assert (await admin.get("/v1/links")).json()["items"] == []
        assert efforts(await rollup(admin))["strategic"] == 0.0

    async def test_a_manual_link_takes_the_place_of_a_rule_link(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        kr = world.krs["revenue"]
        rule = await factories.created(
            admin.post(
                "/v1/link-rules",
                json={"match": {"kinds": ["epic"]}, "key_result_id": kr["id"], "weight": 2},
            )
        )
        made = (await admin.get("/v1/links", params={"work_item": "PAY-E1"})).json()["items"][0]
        assert_problem(await admin.delete(f"/v1/links/{made['id']}"), 409, "conflict")
        manual = await link(admin, kr, "PAY-E1", weight=5)
        assert (manual["id"], manual["origin"], manual["weight"]) == (made["id"], "manual", 5)
        assert (await admin.get(f"/v1/links/{manual['id']}")).json() == manual
        await admin.delete(f"/v1/link-rules/{rule['id']}")
        remaining = (await admin.get("/v1/links")).json()["items"]
        assert [(lk["work_item_key"], lk["origin"]) for lk in remaining] == [("PAY-E1", "manual")]
        # Removing the manual link hands the item back to no rule (none left): unlinked.
        assert (await admin.delete(f"/v1/links/{manual['id']}")).status_code == 204
        assert (await admin.get("/v1/work-items/PAY-E1")).json()["category"] == "heartbeat"
        assert_problem(await admin.get(f"/v1/links/{manual['id']}"), 404, "not-found")
        assert_problem(await admin.delete(f"/v1/links/{manual['id']}"), 404, "not-found")

    async def test_a_key_result_loses_its_linked_progress_with_every_kind_of_removed_link(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        """A leaf's effective links are its link source's links, so a removed link leaves no
        row behind to say which KR lost effort: each way of removing one says so itself."""
        world = await build(admin, tracker)
        kr = world.krs["revenue"]
        switched = await admin.patch(
            f"/v1/key-results/{kr['id']}", json={"progress_mode": "linked"}
        )
        assert switched.status_code == 200, switched.text

        async def progress() -> float:
            body = (await admin.get(f"/v1/key-results/{kr['id']}")).json()
            return float(body["progress"])

        assert await progress() == 0.0
        rule = {"match": {"labels": ["OKR"]}, "key_result_id": kr["id"]}
        made = await factories.created(admin.post("/v1/link-rules", json=rule))
        linked = await progress()  # PAY-E1's leaves: some done, some open
        assert 0 < linked < 1
        # The epic loses the label at the provider: the sync takes the rule's link away.
        tracker.touch("E1", labels=[])
        await world.resync(admin)
        assert await progress() == 0.0
        # A manual link, then its removal.
        manual = await link(admin, kr, "PAY-E1")
        assert await progress() == linked
        assert (await admin.delete(f"/v1/links/{manual['id']}")).status_code == 204
        assert await progress() == 0.0
        # The label again, then the rule's removal.
        tracker.touch("E1", labels=["okr"])
        await world.resync(admin)
        assert await progress() == linked
        assert (await admin.delete(f"/v1/link-rules/{made['id']}")).status_code == 204
        assert await progress() == 0.0

    async def test_reparenting_at_the_provider_moves_effort(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["revenue"], "PLT-E2")
        tracker.touch("s1", parent="E2")
        await world.resync(admin)
        s1 = (await admin.get("/v1/work-items/PAY-s1")).json()
        assert s1["why"]["item"]["key"] == "PLT-E2"
        assert efforts(await rollup(admin))["strategic"] == 3.0  # s1, t1, t2

    async def test_deleting_a_key_result_falls_back_to_ancestors_and_rules(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["revenue"], "PAY-E1")
        await link(admin, world.krs["conversion"], "PAY-s1")
        response = await admin.delete(f"/v1/key-results/{world.krs['conversion']['id']}")
        assert response.status_code == 204
        s1 = (await admin.get("/v1/work-items/PAY-s1")).json()
        assert [lk["key_result"] for lk in s1["links"]] == ["Revenue 10M"]
        assert s1["why"]["item"]["key"] == "PAY-E1"
        await admin.delete(f"/v1/objectives/{world.objectives['pay']['id']}")
        await admin.delete(f"/v1/objectives/{world.objectives['grow']['id']}")
        assert efforts(await rollup(admin))["strategic"] == 0.0


class TestTeamsAndProgress:
    async def test_a_team_counts_its_subtree_and_lists_its_children(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        body = await rollup(admin, team="payments")
        assert body["team"]["key"] == "payments"
        assert body["total"] == 3.0
        assert [(t["team"]["key"], t["total"]) for t in body["teams"]] == [("checkout", 1.0)]
        company = await rollup(admin, team="company")
        assert [(t["team"]["key"], t["total"]) for t in company["teams"]] == [
            ("payments", 3.0), ("platform", 3.0)
        ]  # fmt: skip
        portfolio = await rollup(admin)
        assert [t["team"]["key"] for t in portfolio["teams"]] == ["company"]

    async def test_a_team_moved_or_renamed_between_roll_ups_is_where_it_is_now(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        """Roll-ups reuse the org tree they built last while no team row differs: a move
        or a rename in between must show in the next one."""
        await build(admin, tracker)
        assert [t["team"]["key"] for t in (await rollup(admin, team="company"))["teams"]] == [
            "payments", "platform"
        ]  # fmt: skip
        moved = await admin.patch("/v1/teams/checkout", json={"parent": "company"})
        assert moved.status_code == 200, moved.text
        company = await rollup(admin, team="company")
        assert [(t["team"]["key"], t["total"]) for t in company["teams"]] == [
            ("checkout", 1.0), ("payments", 2.0), ("platform", 3.0)
        ]  # fmt: skip
        renamed = await admin.patch("/v1/teams/platform", json={"name": "Platform Eng"})
        assert renamed.status_code == 200, renamed.text
        names = [t["team"]["name"] for t in (await rollup(admin, team="company"))["teams"]]
        assert "Platform Eng" in names
        assert (await rollup(admin, team="checkout"))["team"]["key"] == "checkout"

    async def test_shares_are_zero_when_nothing_counts(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        await factories.team(admin, "empty")
        body = await rollup(admin, team="empty")
        assert body["total"] == 0.0
        assert {c["share"] for c in body["categories"].values()} == {0.0}

    async def test_linked_key_result_progress_is_done_over_all_effort(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        kr = await factories.key_result(
            admin, world.objectives["pay"]["id"], progress_mode="linked", progress_basis="points"
        )
        await link(admin, kr, "PAY-E1", weight=1)
        await link(admin, world.krs["revenue"], "PAY-E1", weight=1)
        # Half of each leaf's points count toward kr. Done: s1 3, s2 5, s3 8 (any period);
        # open s5 2; the canceled s4 does not count at all.
        body = (await admin.get(f"/v1/key-results/{kr['id']}")).json()
        assert body["progress"] == pytest.approx(16 / 18)
        by_count = await factories.key_result(
            admin, world.objectives["pay"]["id"], progress_mode="linked"
        )
        await link(admin, by_count, "PAY-s5")
        assert (await admin.get(f"/v1/key-results/{by_count['id']}")).json()["progress"] == 0.0
        # s5 now has links of its own, so it no longer counts for kr: all of kr's work is done.
        assert (await admin.get(f"/v1/key-results/{kr['id']}")).json()["progress"] == 1.0
        objective = (await admin.get(f"/v1/objectives/{world.objectives['pay']['id']}")).json()
        assert objective["progress"] == pytest.approx((0.0 + 1.0 + 0.0) / 3)

    async def test_progress_read_in_bulk_is_each_key_results_own(
        self, admin: httpx.AsyncClient, tracker: FakeTracker, session: AsyncSession
    ) -> None:
        """The roll-ups and the progress scan read every KR's progress in one query; it must
        be what each KR answers alone: manual with and without check-ins, linked on points
        and on counts, linked with no work."""
        world = await build(admin, tracker)
        pay = world.objectives["pay"]["id"]
        points = await factories.key_result(
            admin, pay, progress_mode="linked", progress_basis="points"
        )
        await link(admin, points, "PAY-E1", weight=1)
        by_count = await factories.key_result(admin, pay, progress_mode="linked")
        await link(admin, by_count, "PAY-E1", weight=3)
        await factories.key_result(admin, pay, progress_mode="linked")  # no work at all
        checked = await factories.key_result(admin, pay, target_value=10, current_value=1)
        await admin.post(f"/v1/key-results/{checked['id']}/check-ins", json={"value": 4})
        stmt = sa.select(col(KeyResult.id), *progress_inputs()).outerjoin(
            KeyResultEffort, col(KeyResultEffort.key_result_id) == KeyResult.id
        )
        bulk = {row[0]: progress_from(row[1:]) for row in await fetch_rows(session, stmt)}
        alone = {
            uuid.UUID(kr["id"]): kr["progress"]
            for kr in (await admin.get("/v1/key-results", params={"limit": 200})).json()["items"]
        }
        assert bulk == pytest.approx(alone)
        assert len(set(alone.values())) >= 4  # the cases differ, so a mix-up would show
        assert 0 < bulk[uuid.UUID(points["id"])] < 1


class TestTrendAndCsv:
    async def test_weekly_and_monthly_points_add_up_to_the_period(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        weeks = (await admin.get("/v1/rollups/trend", params={"period": "2026-Q4"})).json()
        points = weeks["points"]
        assert (points[0]["start"], points[0]["end"]) == ("2026-10-01", "2026-10-05")
        assert points[-1]["end"] == "2027-01-01"
        assert len(points) == 14
        # x1 (10-01T01:00Z); s1; b1 (10-19T20:00Z); t1 at Monday 11-02's first instant,
        # so in that week, and t2; s2 in the last second of the quarter.
        assert [p["total"] for p in points] == [1, 1, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]
        assert points[5]["start"] == "2026-11-02"
        months = (
            await admin.get(
                "/v1/rollups/trend",
                params={"period": "2026-Q4", "interval": "month", "basis": "points"},
            )
        ).json()["points"]
        assert [(p["start"], p["total"]) for p in months] == [
            ("2026-10-01", 3 + 1 + 1), ("2026-11-01", 0 + 2), ("2026-12-01", 5)
        ]  # fmt: skip

    async def test_csv_for_rollups_and_trends(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        response = await admin.get(
            "/v1/rollups", params={"period": "2026-Q4", "team": "company"},
            headers={"Accept": "text/csv"},
        )  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 9  # company, payments, platform: three categories each
        heartbeat = {r["team"]: r for r in rows if r["category"] == "heartbeat"}
        assert float(heartbeat["company"]["effort"]) == 6.0
        assert float(heartbeat["payments"]["share"]) == 1.0
        trend = await admin.get(
            "/v1/rollups/trend", params={"period": "2026-Q4", "interval": "month"},
            headers={"Accept": "text/csv"},
        )  # fmt: skip
        trend_rows = list(csv.DictReader(io.StringIO(trend.text)))
        assert {r["start"] for r in trend_rows} == {"2026-10-01", "2026-11-01", "2026-12-01"}
        assert trend_rows[0]["team"] == "(portfolio)"


class TestBadInput:
    async def test_roll_up_parameters_are_checked(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        await build(admin, tracker)
        assert_problem(await admin.get("/v1/rollups"), 422, "invalid-input")
        assert_problem(await admin.get("/v1/rollups?period=2031-Q1"), 422, "invalid-input")
        assert_problem(
            await admin.get("/v1/rollups?period=2026-Q4&basis=hours"), 422, "invalid-input"
        )
        assert_problem(
            await admin.get("/v1/rollups/trend?period=2026-Q4&interval=day"), 422, "invalid-input"
        )
        for ghost in ("ghost", "01a2357b-3eb6-72f5-b6bc-cfedf56cb260"):
            problem = assert_problem(
                await admin.get("/v1/rollups", params={"period": "2026-Q4", "team": ghost}),
                422, "invalid-input",
            )  # fmt: skip
            assert problem["errors"][0]["loc"] == ["query", "team"]
        # A team named by id or by key is the same scope.
        payments = (await admin.get("/v1/teams/payments")).json()
        by_id = await rollup(admin, team=payments["id"])
        assert by_id == await rollup(admin, team="payments")
        assert by_id["team"]["key"] == "payments"

    async def test_links_and_rules_refuse_what_cannot_be(
        self, admin: httpx.AsyncClient, reader: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        kr = world.krs["revenue"]
        body = {"key_result_id": kr["id"], "work_item_key": "PAY-nope"}
        assert_problem(await admin.post("/v1/links", json=body), 422, "invalid-input")
        both = {"key_result_id": kr["id"], "work_item_key": "PAY-E1", "work_item_id": kr["id"]}
        assert_problem(await admin.post("/v1/links", json=both), 422, "invalid-input")
        zero = {"key_result_id": kr["id"], "work_item_key": "PAY-E1", "weight": 0}
        assert_problem(await admin.post("/v1/links", json=zero), 422, "invalid-input")
        await link(admin, kr, "PAY-E1")
        again = {"key_result_id": kr["id"], "work_item_key": "PAY-E1"}
        assert_problem(await admin.post("/v1/links", json=again), 409, "conflict")
        assert_problem(await reader.post("/v1/links", json=again), 403, "forbidden")
        for match in ({}, {"labels": []}, {"colour": ["red"]}):
            rule = {"match": match, "category": "improvement"}
            assert_problem(
                await admin.post("/v1/classification-rules", json=rule), 422, "invalid-input"
            )
        strategic = {"match": {"labels": ["x"]}, "category": "strategic"}
        assert_problem(
            await admin.post("/v1/classification-rules", json=strategic), 422, "invalid-input"
        )
        missing_kr = {"match": {"labels": ["x"]}, "key_result_id": world.objectives["pay"]["id"]}
        assert_problem(await admin.post("/v1/link-rules", json=missing_kr), 422, "invalid-input")
        rule = await classify(admin, "improvement", labels=["x"])
        response = await admin.patch(
            f"/v1/classification-rules/{rule['id']}", json={"priority": None}
        )
        assert_problem(response, 422, "invalid-input")


class TestWorkItemFilters:
    async def test_by_linked_and_by_category(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        world = await build(admin, tracker)
        await link(admin, world.krs["revenue"], "PAY-E1")
        await classify(admin, "improvement", labels=["debt"])

        async def keys(**params: Any) -> set[str]:
            response = await admin.get("/v1/work-items", params={"limit": 100, **params})
            assert response.status_code == 200, response.text
            return {i["key"] for i in response.json()["items"]}

        strategic = {"PAY-E1", "PAY-s1", "PAY-s2", "PAY-s3", "PAY-s4", "PAY-s5"}
        assert await keys(linked="true") == strategic
        assert await keys(category="improvement") == {"PLT-t2"}
        assert await keys(category="heartbeat") == {"CHK-b1", "PLT-E2", "PLT-t1", "PLT-x1"}
        assert len(await keys(linked="false")) == 5
