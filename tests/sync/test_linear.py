"""Syncing Linear through the API: the connector's GraphQL client over real HTTP against a
local Linear that validates and executes every query on Linear's published schema."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from service.db import Database
from service.models import WorkItem
from tests import factories
from tests.fakes.linear import API_KEY, MAX_COMPLEXITY, LinearSite, populate, serve
from tests.sync.helpers import (
    count_items,
    expire_and_resume,
    kill_after,
    queued_run,
    stored,
    sync,
)

TEAMS = ("ENG", "WEB")


@pytest.fixture
def site() -> LinearSite:
    return LinearSite()


@pytest.fixture
def linear_url(site: LinearSite) -> Iterator[str]:
    with serve(site) as url:
        yield url


async def connect_linear(
    admin: httpx.AsyncClient, url: str, name: str = "linear", **config: Any
) -> str:
    body = {
        "provider": "linear",
        "name": name,
        "config": {"api_url": url, "teams": list(TEAMS), "team_map": {"ENG": "payments"}} | config,
        "credentials": {"api_key": API_KEY},
    }
    return str((await factories.created(admin.post("/v1/connections", json=body)))["id"])


def list_calls(rows: int, page: int) -> int:
    """Requests to read a list from scratch: each page after the first starts again from
    the previous page's last update, so it repeats that item."""
    return 1 + max(0, math.ceil((rows - page) / (page - 1)))


def minimum_calls(site: LinearSite) -> int:
    return (
        math.ceil(max(1, len(site.labels)) / 250)
        + list_calls(len(site.initiatives), 100)
        + list_calls(len(site.projects), 100)
        + list_calls(len(site.issues), 250)
    )


async def items_of(database: Database, connection_id: str) -> dict[str, dict[str, Any]]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            select(WorkItem).where(WorkItem.connection_id == uuid.UUID(connection_id))
        )
        items = rows.all()
        by_id = {item.id: item.external_id for item in items}
        return {
            item.external_id: {
                "key": item.key, "kind": item.kind, "status": item.status_category,
                "parent": by_id.get(item.parent_id) if item.parent_id else None,
                "team": item.team_id is not None, "estimate": item.estimate,
                "labels": list(item.labels), "containers": list(item.containers),
                "started": item.started_at is not None, "resolved": item.resolved_at is not None,
                "deleted": item.deleted_at is not None,
            }
            for item in items
        }  # fmt: skip


class TestFullSync:
    async def test_initiatives_projects_issues_and_sub_issues_arrive_with_their_hierarchy(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str, database: Database
    ) -> None:
        populate(site, TEAMS, 600)
        await factories.team(admin, "payments")
        connection_id = await connect_linear(admin, linear_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        everything = len(site.initiatives) + len(site.projects) + len(site.issues)
        assert run["fetched"] == everything
        items = await items_of(database, connection_id)
        assert len(items) == everything
        bet, ops = list(site.initiatives)
        assert items[bet]["kind"] == "initiative"
        shared = next(iter(site.projects))  # in both initiatives; joined `bet` first
        assert (items[shared]["kind"], items[shared]["parent"]) == ("epic", bet)
        assert items[shared]["containers"] == ["ENG"]
        for issue_id, raw in site.issues.items():
            item = items[issue_id]
            expected_parent = (raw["parent"] or raw["project"] or {}).get("id")
            assert item["parent"] == expected_parent
            assert item["kind"] == ("subtask" if raw["parent"] else "issue")
            assert item["estimate"] == raw["estimate"]
            assert item["team"] == (raw["team"]["key"] == "ENG")
            assert item["status"] == {"unstarted": "todo", "started": "in_progress",
                                      "completed": "done", "canceled": "canceled"}[
                raw["state"]["type"]]  # fmt: skip
            assert item["started"] == (raw["startedAt"] is not None)
            assert item["labels"] == (["bug"] if raw["labelIds"] else [])
        assert run["api_calls"] == minimum_calls(site)
        assert max(site.complexities) <= MAX_COMPLEXITY

    async def test_a_second_full_sync_changes_nothing_and_deletions_are_marked(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str, database: Database
    ) -> None:
        populate(site, TEAMS, 80)
        connection_id = await connect_linear(admin, linear_url)
        await sync(admin, connection_id, "full")
        before = await stored(database, connection_id)
        again = await sync(admin, connection_id, "full")
        assert (again["created"], again["updated"]) == (0, 0)
        assert await stored(database, connection_id) == before
        gone = list(site.issues)[5]
        site.remove(gone)
        run = await sync(admin, connection_id, "full")
        assert run["deleted"] == 1
        assert (await items_of(database, connection_id))[gone]["deleted"] is True


class TestIncrementalSync:
    async def test_only_changes_are_fetched(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str, database: Database
    ) -> None:
        populate(site, TEAMS, 600)
        connection_id = await connect_linear(admin, linear_url)
        await sync(admin, connection_id, "full")
        moved = list(site.issues)[10]
        site.move(moved, "completed")
        project = list(site.projects)[3]
        new = site.issue("WEB", title="Fresh", estimate=5.0, project=project)
        run = await sync(admin, connection_id, "incremental")
        assert run["status"] == "succeeded", run["error"]
        assert run["created"] == 1
        assert run["updated"] == 1
        # Each list re-reads only its newest item from the last sync, plus the changes.
        assert run["fetched"] == 3 + 2
        assert run["api_calls"] == 4  # labels, then one page of each list
        items = await items_of(database, connection_id)
        assert (items[moved]["status"], items[moved]["resolved"]) == ("done", True)
        assert (items[new]["parent"], items[new]["estimate"]) == (project, 5.0)

    async def test_an_issue_updated_during_the_sync_cannot_push_another_out_of_the_listing(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str, database: Database
    ) -> None:
        populate(site, ("ENG",), 900)
        connection_id = await connect_linear(admin, linear_url, teams=["ENG"])
        first_page = list(site.issues)[:250]
        early = [*first_page[:5], first_page[-1]]
        # The fifth request reads the second page of issues. Just before it, issues read on
        # the first page are edited and move to the end of the list, the page's last one
        # (the one its end cursor names) among them.
        site.fail(5, lambda: [site.touch(i, title="edited") for i in early])
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        items = await items_of(database, connection_id)
        assert set(site.issues) <= set(items)


class TestFaults:
    async def test_a_wrong_key_fails_at_once(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str
    ) -> None:
        populate(site, TEAMS, 10)
        connection_id = await connect_linear(admin, linear_url)
        wrong = {"credentials": {"api_key": "lin_api_wrong"}}
        await admin.patch(f"/v1/connections/{connection_id}", json=wrong)
        run = await sync(admin, connection_id, "full")
        assert (run["status"], run["attempts"]) == ("failed", 1)
        assert run["error"].startswith("AuthFailed")
        assert "Authentication required" in run["error"]
        assert (await admin.post(f"/v1/connections/{connection_id}/check")).json()["ok"] is False

    async def test_an_unknown_team_fails_the_check(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str
    ) -> None:
        populate(site, TEAMS, 10)
        connection_id = await connect_linear(admin, linear_url, teams=["ENG", "NOPE"])
        checked = (await admin.post(f"/v1/connections/{connection_id}/check")).json()
        assert checked["ok"] is False
        assert "NOPE" in checked["error"]

    async def test_rate_limits_server_errors_and_resets_are_retried_to_the_clean_result(
        self, admin: httpx.AsyncClient, site: LinearSite, linear_url: str, database: Database
    ) -> None:
        populate(site, TEAMS, 700)
        clean = await connect_linear(admin, linear_url, "clean")
        first = await sync(admin, clean, "full")
        faulty = await connect_linear(admin, linear_url, "faulty")
        site.fail(1, "ratelimited")
        site.fail(3, (429, {"Retry-After": "0"}))
        site.fail(5, (502, {}))
        site.fail(6, "reset")
        site.fail(8, (503, {}))
        run = await sync(admin, faulty, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["api_calls"] == first["api_calls"] + 5
        assert await stored(database, faulty) == await stored(database, clean)

    async def test_a_killed_sync_resumes_to_the_clean_result_without_duplicates(
        self,
        admin: httpx.AsyncClient,
        site: LinearSite,
        linear_url: str,
        database: Database,
        app: Any,
    ) -> None:
        populate(site, TEAMS, 2500)
        clean = await connect_linear(admin, linear_url, "clean")
        first = await sync(admin, clean, "full")
        killed = await connect_linear(admin, linear_url, "killed")
        run_id = await queued_run(database, killed)
        await kill_after(app.state.services, run_id, commits=2)
        partial = len(await stored(database, killed))
        assert 0 < partial < len(await stored(database, clean))
        calls_before = site.total_calls

        await expire_and_resume(app.state.services, database, run_id)
        finished = (await admin.get(f"/v1/sync-runs/{run_id}")).json()
        assert finished["status"] == "succeeded", finished["error"]
        assert await stored(database, killed) == await stored(database, clean)
        assert site.total_calls - calls_before < first["api_calls"]  # it resumed
        assert await count_items(database, killed) == len(await stored(database, clean))
