"""Syncing GitHub Issues through the API: the connector's httpx client over real HTTP against
a local GitHub built on GitHub's published examples."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from service.db import Database
from service.models import SyncRun, WorkItem
from service.sync.engine import SyncEngine
from service.worker.retry import RetryLater
from tests import factories
from tests.fakes.github import TOKEN, GitHubSite, populate, serve
from tests.sync.helpers import (
    count_items,
    expire_and_resume,
    kill_after,
    queued_run,
    stored,
    sync,
)

REPOS = ("acme/api", "acme/web")


@pytest.fixture
def site() -> GitHubSite:
    return GitHubSite()


@pytest.fixture
def github_url(site: GitHubSite) -> Iterator[str]:
    with serve(site) as url:
        yield url


async def connect_github(
    admin: httpx.AsyncClient, url: str, name: str = "github", **config: Any
) -> str:
    body = {
        "provider": "github",
        "name": name,
        "config": {"api_url": url, "repos": list(REPOS), "team_map": {"acme/api": "payments"}}
        | config,
        "credentials": {"token": TOKEN},
    }
    return str((await factories.created(admin.post("/v1/connections", json=body)))["id"])


def listing_calls(site: GitHubSite, repo: str) -> int:
    """Requests to list a repository from scratch: 100 a page, and each page after the
    first starts again from the previous page's last update, so it repeats that issue."""
    rows = len(site.listing(repo))
    return 1 + max(0, math.ceil((rows - 100) / 99))


async def by_key(database: Database, connection_id: str) -> dict[str, Any]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            select(WorkItem).where(WorkItem.connection_id == uuid.UUID(connection_id))
        )
        items = rows.all()
        keys = {item.id: item.key for item in items}
        return {
            item.key: {
                "kind": item.kind,
                "status": item.status_category,
                "parent": keys.get(item.parent_id) if item.parent_id else None,
                "team": item.team_id is not None,
                "containers": list(item.containers),
                "labels": list(item.labels),
                "type": item.type_name,
                "deleted": item.deleted_at is not None,
                "resolved": item.resolved_at is not None,
            }
            for item in items
        }


class TestFullSync:
    async def test_issues_arrive_with_hierarchy_epics_and_states_and_no_pull_requests(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, REPOS, 250)
        await factories.team(admin, "payments")
        connection_id = await connect_github(admin, github_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        issues = [i for i, raw in site.issues.items() if "pull_request" not in raw]
        assert run["fetched"] == len(issues)
        items = await by_key(database, connection_id)
        assert len(items) == len(issues)
        assert not [k for k in items if "Bump" in k]
        epic_api = items["acme/api#1"]
        assert (epic_api["kind"], epic_api["type"], epic_api["team"]) == ("epic", "Epic", True)
        assert epic_api["containers"] == ["acme/api", "2025-Q2"]
        epic_web = items["acme/web#1"]
        assert (epic_web["kind"], epic_web["team"]) == ("epic", False)
        first_child = items["acme/api#2"]
        assert (first_child["kind"], first_child["parent"]) == ("issue", "acme/api#1")
        assert (first_child["status"], first_child["resolved"]) == ("done", True)
        canceled = items["acme/api#8"]  # the seventh sub-issue closes as not planned
        assert canceled["status"] == "canceled"
        assert items["acme/api#3"]["status"] == "todo"
        assert items["acme/api#3"]["labels"] == ["backend"]
        # The fewest calls: the listings only; every parent's sub-issues were all listed.
        assert run["api_calls"] == sum(listing_calls(site, repo) for repo in REPOS)
        assert not [path for path in site.calls if path.endswith("/sub_issues")]

    async def test_a_second_full_sync_changes_nothing_and_deletions_are_marked(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, REPOS, 60)
        connection_id = await connect_github(admin, github_url)
        await sync(admin, connection_id, "full")
        before = await stored(database, connection_id)
        again = await sync(admin, connection_id, "full")
        assert (again["created"], again["updated"]) == (0, 0)
        assert await stored(database, connection_id) == before
        gone = site.by_number[("acme/web", 3)]
        site.delete(gone)
        run = await sync(admin, connection_id, "full")
        assert run["deleted"] == 1
        assert (await by_key(database, connection_id))["acme/web#3"]["deleted"] is True

    async def test_sub_issues_in_repositories_not_listed_are_fetched_from_their_parent(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, REPOS, 20)
        epic = site.by_number[("acme/api", 1)]
        outside = site.add("acme/infra", title="Terraform the queue", parent=epic)
        deeper = site.add("acme/infra", title="Size the queue", parent=outside)
        connection_id = await connect_github(admin, github_url)
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        items = await by_key(database, connection_id)
        assert items["acme/infra#1"]["parent"] == "acme/api#1"
        assert items["acme/infra#2"]["parent"] == "acme/infra#1"
        assert items["acme/infra#1"]["containers"] == ["acme/infra"]
        # One call for the epic (whose total exceeds its listed sub-issues), one for the
        # outside sub-issue that has a sub-issue of its own; none for any other parent.
        sub_calls = {p: n for p, n in site.calls.items() if p.endswith("/sub_issues")}
        assert sub_calls == {"/repos/acme/api/issues/1/sub_issues": 1,
                             "/repos/acme/infra/issues/1/sub_issues": 1}  # fmt: skip
        assert deeper in site.issues

    @pytest.mark.parametrize("cursor_links", [False, True])
    async def test_a_page_that_shares_one_second_is_paged_through_by_its_next_link(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database,
        cursor_links: bool,
    ) -> None:  # fmt: skip
        site.cursor_links = cursor_links  # page numbers, or GitHub's newer `after` cursors
        populate(site, ("acme/api",), 330)
        same = site.clock
        for issue_id in site.listing("acme/api")[50:]:  # a bulk edit: 280 rows, one second
            site._changed(issue_id, same)
        connection_id = await connect_github(admin, github_url, repos=["acme/api"])
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        issues = [i for i, raw in site.issues.items() if "pull_request" not in raw]
        assert len(await by_key(database, connection_id)) == len(issues)
        assert run["fetched"] == len(issues)


class TestIncrementalSync:
    async def test_only_changes_are_fetched_and_unchanged_repositories_answer_304(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, REPOS, 300)
        connection_id = await connect_github(admin, github_url)
        await sync(admin, connection_id, "full")
        quiet = await sync(admin, connection_id, "incremental")
        assert (quiet["fetched"], quiet["api_calls"]) == (0, len(REPOS))
        assert site.not_modified == len(REPOS)

        story = site.by_number[("acme/web", 4)]
        site.close(story, "not_planned")
        site.add("acme/web", title="A new one", labels=("epic",))
        new_key = f"acme/web#{site.numbers['acme/web']}"
        run = await sync(admin, connection_id, "incremental")
        assert run["status"] == "succeeded", run["error"]
        assert run["created"] == 1
        assert run["fetched"] <= 1 + 2 + 99  # the changes and the last page read
        assert run["api_calls"] == 2  # a 304 for acme/api, one page for acme/web
        assert site.not_modified == len(REPOS) + 1
        items = await by_key(database, connection_id)
        assert items["acme/web#4"]["status"] == "canceled"
        assert items["acme/web#4"]["parent"] == "acme/web#1"
        assert items[new_key]["kind"] == "epic"

    async def test_an_issue_updated_during_the_sync_cannot_push_another_out_of_the_listing(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, ("acme/api",), 450)
        connection_id = await connect_github(admin, github_url, repos=["acme/api"])
        early = site.listing("acme/api")[:5]
        # Before the third request, five issues already read are edited and move to the
        # end of the list: page numbers would now skip the five issues after page two.
        site.fail(3, lambda: [site.touch(i, title="edited") for i in early])
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "succeeded", run["error"]
        items = await by_key(database, connection_id)
        issues = [i for i, raw in site.issues.items() if "pull_request" not in raw]
        assert len(items) == len(issues)


class TestFaults:
    async def test_wrong_credentials_fail_at_once(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str
    ) -> None:
        populate(site, REPOS, 10)
        connection_id = await connect_github(admin, github_url)
        await admin.patch(f"/v1/connections/{connection_id}", json={"credentials": {"token": "x"}})
        run = await sync(admin, connection_id, "full")
        assert (run["status"], run["attempts"]) == ("failed", 1)
        assert run["error"].startswith("AuthFailed")
        assert "Bad credentials" in run["error"]
        assert (await admin.post(f"/v1/connections/{connection_id}/check")).json()["ok"] is False

    async def test_a_missing_repository_fails_the_check_and_the_run(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str
    ) -> None:
        populate(site, REPOS, 10)
        connection_id = await connect_github(admin, github_url, repos=["acme/api", "acme/nope"])
        checked = (await admin.post(f"/v1/connections/{connection_id}/check")).json()
        assert checked["ok"] is False
        assert "acme/nope" in checked["error"]
        run = await sync(admin, connection_id, "full")
        assert run["status"] == "failed"
        assert "Permanent" in run["error"]

    async def test_rate_limits_server_errors_and_resets_are_retried_to_the_clean_result(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database
    ) -> None:
        populate(site, REPOS, 500)
        clean = await connect_github(admin, github_url, "clean")
        first = await sync(admin, clean, "full")
        faulty = await connect_github(admin, github_url, "faulty")
        now = str(int(time.time()))
        site.fail(1, (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": now}))
        site.fail(2, (429, {"Retry-After": "0"}))
        site.fail(4, (502, {}))
        site.fail(6, "reset")
        site.fail(7, (403, {"Retry-After": "0"}))  # a secondary rate limit
        run = await sync(admin, faulty, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["api_calls"] == first["api_calls"] + 5
        assert await stored(database, faulty) == await stored(database, clean)

    async def test_a_long_rate_limit_defers_the_run_instead_of_sleeping(
        self, admin: httpx.AsyncClient, site: GitHubSite, github_url: str, database: Database,
        app: Any,
    ) -> None:  # fmt: skip
        populate(site, REPOS, 10)
        connection_id = await connect_github(admin, github_url)
        run_id = await queued_run(database, connection_id)
        reset = int(time.time()) + 1800
        site.fail(1, (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
        started = time.monotonic()
        with pytest.raises(RetryLater) as deferred:
            await SyncEngine(app.state.services).run(run_id)
        assert time.monotonic() - started < 10
        assert 1790 < deferred.value.defer <= 1800
        assert site.total_calls == 1
        async with database.sessionmaker() as session:
            stored_run = await session.get(SyncRun, run_id)
            assert stored_run is not None
            # Not failed: released for the queue to run again when GitHub's window resets.
            assert (stored_run.status, stored_run.lease_owner) == ("running", None)
            assert stored_run.api_calls == 1

    async def test_a_killed_sync_resumes_to_the_clean_result_without_duplicates(
        self,
        admin: httpx.AsyncClient,
        site: GitHubSite,
        github_url: str,
        database: Database,
        app: Any,
    ) -> None:
        populate(site, REPOS, 2500)
        clean = await connect_github(admin, github_url, "clean")
        await sync(admin, clean, "full")
        killed = await connect_github(admin, github_url, "killed")
        run_id = await queued_run(database, killed)
        await kill_after(app.state.services, run_id, commits=2)
        partial = len(await stored(database, killed))
        assert 0 < partial < len(await stored(database, clean))
        calls_before = site.total_calls

        await expire_and_resume(app.state.services, database, run_id)
        finished = (await admin.get(f"/v1/sync-runs/{run_id}")).json()
        assert finished["status"] == "succeeded", finished["error"]
        assert await stored(database, killed) == await stored(database, clean)
        # It resumed where it stopped: the resumed part is shorter than a whole listing.
        whole = sum(listing_calls(site, repo) for repo in REPOS)
        assert site.total_calls - calls_before < whole
        assert await count_items(database, killed) == len(await stored(database, clean))
