"""Syncing Jira through the API: the real ``jira`` library over HTTP against a local Jira,
Cloud and Data Center."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.jira import connector as jira_connector
from service.db import Database
from tests import factories
from tests.fakes.jira import API_TOKEN, DONE, EMAIL, PAT, JiraSite, populate, serve
from tests.sync.helpers import (
    count_items,
    expire_and_resume,
    kill_after,
    queued_run,
    stored,
    sync,
)

DISCOVERY_CALLS = 4  # serverInfo, myself, field, status


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> JiraSite:
    return JiraSite(cloud=request.param == "cloud")


@pytest.fixture
def jira_url(site: JiraSite) -> Iterator[str]:
    with serve(site) as url:
        yield url


def credentials(site: JiraSite) -> dict[str, str]:
    return {"email": EMAIL, "api_token": API_TOKEN} if site.cloud else {"token": PAT}


async def connect_jira(
    admin: httpx.AsyncClient, site: JiraSite, url: str, name: str = "jira", **config: Any
) -> str:
    body = {
        "provider": "jira",
        "name": name,
        "config": {"url": url, "jql": "project = PAY", "team_map": {"PAY": "payments"}} | config,
        "credentials": credentials(site),
    }
    return str((await factories.created(admin.post("/v1/connections", json=body)))["id"])


def minimum_calls(site: JiraSite, issues: int) -> int:
    # Both end with a search for what changed from the start's minute on.
    if site.cloud:  # id pages, then bodies and changelogs per 1,000
        return DISCOVERY_CALLS + max(1, math.ceil(issues / 5000)) + 2 * math.ceil(issues / 1000) + 1
    return DISCOVERY_CALLS + max(1, math.ceil(issues / 1000)) + 1


class TestFullSync:
    async def test_everything_arrives_with_hierarchy_points_and_start_times(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, database: Database
    ) -> None:
        await factories.team(admin, "payments")
        populate(site, 1400)
        total = len(site.issues)
        connection_id = await connect_jira(admin, site, jira_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        assert (run["fetched"], run["created"]) == (total, total)
        assert run["api_calls"] == minimum_calls(site, total)
        items = await stored(database, connection_id)
        assert len(items) == total
        assert all(i[6] is not None for i in items if i[3] in ("issue", "subtask"))

        # PAY-1 epic, PAY-2 story, PAY-3 its sub-task, PAY-4 story in progress with "5" points
        story = (await admin.get("/v1/work-items/PAY-4")).json()
        assert (story["kind"], story["parent"], story["team"]) == ("issue", "PAY-1", "payments")
        assert (story["status_category"], story["estimate"]) == ("in_progress", 5.0)
        assert story["started_at"] is not None
        assert story["resolved_at"] is None
        done = (await admin.get("/v1/work-items/PAY-5")).json()
        assert done["status_category"] == "done"
        assert done["started_at"] < done["resolved_at"]
        subtask = (await admin.get("/v1/work-items/PAY-3")).json()
        assert (subtask["kind"], subtask["parent"]) == ("subtask", "PAY-2")
        epic = (await admin.get("/v1/work-items/PAY-1")).json()
        assert (epic["kind"], epic["labels"]) == ("epic", ["okr"])

    async def test_calls_that_do_not_wait_on_each_other_go_at_once(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, database: Database
    ) -> None:
        # With a remote Jira's latency, overlapping the two bulk calls of each chunk nearly
        # halves a Cloud sync; Data Center's one search call a page has nothing beside it.
        site.latency = 0.05
        populate(site, 700)
        connection_id = await connect_jira(admin, site, jira_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["api_calls"] == minimum_calls(site, len(site.issues))
        assert len(await stored(database, connection_id)) == len(site.issues)
        bulk = frozenset(("/rest/api/3/issue/bulkfetch", "/rest/api/3/changelog/bulkfetch"))
        assert (bulk in site.overlapped) is site.cloud
        # Discovery's calls go together too, on either deployment.
        assert frozenset(("/rest/api/2/serverInfo", "/rest/api/2/myself")) in site.overlapped

    async def test_cloud_searches_the_next_ids_while_this_pages_bodies_come(
        self, admin: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Cloud only: Data Center pages through one search, with nothing beside it.
        monkeypatch.setattr(jira_connector, "ID_PAGE", 200)  # several id pages from a few issues
        site = JiraSite(cloud=True, latency=0.05)
        populate(site, 700)
        total = len(site.issues)
        with serve(site) as url:
            connection_id = await connect_jira(admin, site, url)
            run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        pages = math.ceil(total / 200)  # each id page is one chunk: bodies and changelogs
        # ... and the last search, for what changed from the start's minute on.
        assert run["api_calls"] == DISCOVERY_CALLS + 3 * pages + 1
        assert len(await stored(database, connection_id)) == total
        search = "/rest/api/3/search/jql"
        assert frozenset((search, "/rest/api/3/issue/bulkfetch")) in site.overlapped
        assert frozenset((search, "/rest/api/3/changelog/bulkfetch")) in site.overlapped

    async def test_a_second_full_sync_changes_nothing(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, database: Database
    ) -> None:
        populate(site, 300)
        connection_id = await connect_jira(admin, site, jira_url)
        await sync(admin, connection_id, "full")
        before = await stored(database, connection_id)
        again = await sync(admin, connection_id, "full")
        assert (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)
        assert await stored(database, connection_id) == before

    async def test_deleted_issues_are_marked_deleted(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str
    ) -> None:
        populate(site, 50)
        connection_id = await connect_jira(admin, site, jira_url)
        await sync(admin, connection_id, "full")
        gone = [i for i, raw in site.issues.items() if raw["key"] in ("PAY-4", "PAY-9")]
        for issue_id in gone:
            site.delete(issue_id)
        run = await sync(admin, connection_id, "full")
        assert run["deleted"] == 2
        assert (await admin.get("/v1/work-items/PAY-4")).json()["deleted_at"] is not None
        # Cloud reads back by id what the sync did not see, in case its pages passed over
        # one: a bulk fetch, which finds neither.
        recheck = 1 if site.cloud else 0
        assert run["api_calls"] == minimum_calls(site, len(site.issues)) + recheck

    async def test_an_issue_moved_out_of_the_connections_scope_is_gone_from_it(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str
    ) -> None:
        populate(site, 50)
        connection_id = await connect_jira(admin, site, jira_url)  # JQL: project = PAY
        await sync(admin, connection_id, "full")
        moved, deleted = (i for i, raw in site.issues.items() if raw["key"] in ("PAY-4", "PAY-9"))
        site.touch(moved, project={"id": "200", "key": "OPS", "name": "Operations"})
        site.delete(deleted)
        run = await sync(admin, connection_id, "full")
        assert (run["status"], run["deleted"]) == ("succeeded", 2), run["error"]
        for key in ("PAY-4", "PAY-9"):
            assert (await admin.get(f"/v1/work-items/{key}")).json()["deleted_at"] is not None
        # Cloud's read-back: the bulk fetch finds the moved issue, a search finds it outside
        # the JQL.
        recheck = 2 if site.cloud else 0
        in_scope = len(site.issues) - 1
        assert run["api_calls"] == minimum_calls(site, in_scope) + recheck


class TestIncrementalSync:
    @pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles"])
    async def test_only_changes_are_fetched_whatever_the_users_time_zone(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, zone: str
    ) -> None:
        site.user_zone = zone  # JQL dates are read in the searching user's zone
        populate(site, 500)
        connection_id = await connect_jira(admin, site, jira_url)
        await sync(admin, connection_id, "full")
        site.clock += timedelta(hours=2)
        changed = [i for i, raw in site.issues.items() if raw["key"] in ("PAY-10", "PAY-20")]
        site.move(changed[0], DONE)
        site.touch(changed[1], summary="Renamed story", labels=["heartbeat"])
        new = site.add(parent=next(iter(site.issues)))
        run = await sync(admin, connection_id, "incremental")
        assert (run["created"], run["updated"]) == (1, 2)
        # The minute of overlap before the checkpoint is read again, and changes nothing.
        assert 3 <= run["fetched"] <= 3 + 60 // 7
        assert (await admin.get("/v1/work-items/PAY-10")).json()["status_category"] == "done"
        renamed = (await admin.get("/v1/work-items/PAY-20")).json()
        assert (renamed["title"], renamed["labels"]) == ("Renamed story", ["heartbeat"])
        assert (await admin.get(f"/v1/work-items/{site.issues[new]['key']}")).status_code == 200


class TestFaults:
    async def test_wrong_credentials_fail_at_once(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str
    ) -> None:
        populate(site, 10)
        connection_id = await connect_jira(admin, site, jira_url)
        wrong = {"email": EMAIL, "api_token": "nope"} if site.cloud else {"token": "nope"}
        await admin.patch(f"/v1/connections/{connection_id}", json={"credentials": wrong})
        run = await sync(admin, connection_id, "full")
        assert (run["status"], run["attempts"]) == ("failed", 1)
        assert run["error"].startswith("AuthFailed")
        assert (await admin.post(f"/v1/connections/{connection_id}/check")).json()["ok"] is False

    async def test_rate_limits_server_errors_and_resets_are_retried_to_the_clean_result(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, database: Database
    ) -> None:
        populate(site, 1400)
        clean = await connect_jira(admin, site, jira_url, "clean")
        await sync(admin, clean, "full")
        faulty = await connect_jira(admin, site, jira_url, "faulty")
        site.fail(5, (429, {"Retry-After": "0"}))
        site.fail(6, (502, {}))
        site.fail(8, "reset")
        site.fail(9, (503, {}))
        site.fail(11, "garbled")
        run = await sync(admin, faulty, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["api_calls"] == minimum_calls(site, len(site.issues)) + 5
        assert await stored(database, faulty) == await stored(database, clean)

    async def test_bad_jql_fails_the_run_with_jiras_message(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str
    ) -> None:
        connection_id = await connect_jira(admin, site, jira_url, jql="assignee was bob")
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "failed"
        assert "Permanent" in run["error"]
        assert "cannot parse" in run["error"]

    async def test_a_killed_sync_resumes_to_the_clean_result_without_duplicates(
        self,
        admin: httpx.AsyncClient,
        site: JiraSite,
        jira_url: str,
        database: Database,
        app: Any,
    ) -> None:
        populate(site, 1400)
        clean = await connect_jira(admin, site, jira_url, "clean")
        await sync(admin, clean, "full")
        killed = await connect_jira(admin, site, jira_url, "killed")
        run_id = await queued_run(database, killed)
        await kill_after(app.state.services, run_id, commits=1)
        partial = len(await stored(database, killed))
        assert 0 < partial < len(site.issues)

        await expire_and_resume(app.state.services, database, run_id)
        finished = (await admin.get(f"/v1/sync-runs/{run_id}")).json()
        assert finished["status"] == "succeeded", finished["error"]
        assert await stored(database, killed) == await stored(database, clean)
        assert await count_items(database, killed) == len(site.issues)


class TestStoryPoints:
    @pytest.mark.parametrize("site", ["cloud"], indirect=True)
    async def test_board_estimation_field_wins_and_a_new_field_rewrites_stored_items(
        self, admin: httpx.AsyncClient, jira_url: str, site: JiraSite
    ) -> None:
        epic = site.add(kind="epic")
        story = site.add(parent=epic, points=3)
        site.issues[story]["fields"]["customfield_10024"] = "8"  # the board's field
        connection_id = await connect_jira(admin, site, jira_url, board_id=7)
        await sync(admin, connection_id, "full")
        assert (await admin.get("/v1/work-items/PAY-2")).json()["estimate"] == 8.0
        await admin.patch(
            f"/v1/connections/{connection_id}",
            json={"config": {"url": jira_url, "story_points_field": "customfield_10016"}},
        )
        assert (await admin.get("/v1/work-items/PAY-2")).json()["estimate"] == 3.0


class TestDataCenterResultWindow:
    @pytest.mark.parametrize("site", ["datacenter"], indirect=True)
    async def test_searches_restart_from_the_checkpoint_before_passing_the_window(
        self,
        admin: httpx.AsyncClient,
        site: JiraSite,
        jira_url: str,
        database: Database,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The same logic as at Jira's 10,000, on a window small enough for a test.
        site.result_window = 2500
        monkeypatch.setattr("connectors.jira.connector.DC_WINDOW", 2500)
        populate(site, 2500)  # 3,612 issues: past the window
        connection_id = await connect_jira(admin, site, jira_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["created"] == len(site.issues)
        assert site.calls["/rest/api/2/search"] >= 4
        assert len(await stored(database, connection_id)) == len(site.issues)


class TestEditsDuringASync:
    @pytest.mark.parametrize("change", ["edit", "delete"])
    async def test_an_issue_changed_mid_sync_makes_no_other_issue_skipped(
        self, admin: httpx.AsyncClient, site: JiraSite, jira_url: str, database: Database,
        monkeypatch: pytest.MonkeyPatch, change: str,
    ) -> None:  # fmt: skip
        # Offset paging over a search that an edit or a deletion changes: the issue leaves its
        # place, everything after it moves up one, and a page boundary would skip one.
        monkeypatch.setattr(jira_connector, "ID_PAGE", 200)
        monkeypatch.setattr(jira_connector, "DC_PAGE", 200)
        populate(site, 500)
        connection_id = await connect_jira(admin, site, jira_url)
        await sync(admin, connection_id, "full")
        first = site.ordered()[0]
        searches = 0

        def change_after_the_first_search() -> None:
            nonlocal searches
            searches += 1
            if searches == 2 and change == "edit":
                # The edit is made now, during the sync (the site's clock ticks 7 s an edit).
                site.clock = datetime.now(UTC) - timedelta(seconds=7)
                site.touch(first, summary="edited during the sync")
            elif searches == 2:
                site.delete(first)

        key = site.issues[first]["key"]
        site.on_search = change_after_the_first_search
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        live = {item[0] for item in await stored(database, connection_id) if not item[-1]}
        # Every other issue is there. The deleted one is either marked deleted (Cloud may
        # ask for its body after it went: the search for the next ids goes at once) or,
        # read before it went, still live until the next full sync.
        assert live - {first} == set(site.issues) - {first}
        assert run["deleted"] == (0 if first in live else 1)
        assert change == "delete" or first in live
        if change == "edit":
            edited = (await admin.get(f"/v1/work-items/{key}")).json()
            assert edited["title"] == "edited during the sync"
