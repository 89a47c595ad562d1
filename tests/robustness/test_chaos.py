"""A sync against each local provider with one request in ten failing: a 429 with
`Retry-After`, a 502, a 503, a reset connection, or an answer held past the client's read
timeout, in turn. The run succeeds, and what it stores equals what a clean run of the same
provider stores, with no duplicates."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from connectors.github import connector as github_connector
from connectors.jira import client as jira_client
from connectors.jira import connector as jira_connector
from connectors.linear import documents as linear_documents
from service import services
from service.db import Database
from tests import factories
from tests.fakes import github, jira, linear
from tests.sync.helpers import stored, sync

STALL = 1.5  # seconds an answer is held; the clients' read timeout is cut to 1 s below
KINDS: tuple[Any, ...] = ((429, {"Retry-After": "0"}), (502, {}), (503, {}), "reset",
                          ("stall", STALL))  # fmt: skip
EVERY = 10  # one request in ten fails


def plan_faults(site: Any, requests: int) -> dict[int, Any]:
    """Every tenth request from now, up to ``requests``, fails with the next kind of fault."""
    planned = {}
    for n, at in enumerate(range(EVERY // 2, requests, EVERY)):
        planned[at] = KINDS[n % len(KINDS)]
        site.fail(at, planned[at])
    return planned


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read timeouts of a second, so that a held answer times out (set before the app's
    HTTP client is made: this fixture comes first in the test's arguments)."""
    monkeypatch.setattr(services, "HTTP_TIMEOUT", httpx.Timeout(1.0))
    monkeypatch.setattr(jira_client, "TIMEOUT", (1.0, 1.0))
    # Small pages: many requests from a site that builds quickly.
    monkeypatch.setattr(jira_connector, "ID_PAGE", 100)
    monkeypatch.setattr(jira_connector, "BODY_CHUNK", 50)
    monkeypatch.setattr(jira_connector, "DC_PAGE", 15)
    monkeypatch.setattr(github_connector, "PER_PAGE", 10)
    small = {name: re.sub(r"\$first: Int = \d+", "$first: Int = 20", text)
             for name, text in linear_documents.ALL.items()}  # fmt: skip
    monkeypatch.setattr(linear_documents, "ALL", small)


@contextmanager
def jira_site(cloud: bool) -> Iterator[tuple[Any, dict[str, Any]]]:
    site = jira.JiraSite(cloud=cloud)
    jira.populate(site, 600)
    if cloud:
        scope = {"jql": "project = PAY"}
        credentials = {"email": jira.EMAIL, "api_token": jira.API_TOKEN}
    else:
        scope, credentials = {}, {"token": jira.PAT}
    with jira.serve(site) as url:
        yield site, {"provider": "jira", "config": {"url": url} | scope,
                     "credentials": credentials}  # fmt: skip


@contextmanager
def github_issues() -> Iterator[tuple[Any, dict[str, Any]]]:
    site = github.GitHubSite()
    github.populate(site, ("acme/api", "acme/web"), 500)
    with github.serve(site) as url:
        yield site, {"provider": "github",
                     "config": {"api_url": url, "repos": ["acme/api", "acme/web"]},
                     "credentials": {"token": github.TOKEN}}  # fmt: skip


@contextmanager
def linear_workspace() -> Iterator[tuple[Any, dict[str, Any]]]:
    site = linear.LinearSite()
    linear.populate(site, ("ENG", "WEB"), 900)
    with linear.serve(site) as url:
        yield site, {"provider": "linear", "config": {"api_url": url, "teams": ["ENG", "WEB"]},
                     "credentials": {"api_key": linear.API_KEY}}  # fmt: skip


PROVIDERS: dict[str, Callable[[], Any]] = {
    "jira-cloud": functools.partial(jira_site, cloud=True),
    "jira-datacenter": functools.partial(jira_site, cloud=False),
    "github": github_issues, "linear": linear_workspace,
}  # fmt: skip


async def connect(admin: httpx.AsyncClient, name: str, body: dict[str, Any]) -> str:
    made = await factories.created(admin.post("/v1/connections", json=body | {"name": name}))
    return str(made["id"])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_one_request_in_ten_failing_ends_in_the_clean_state(
    short_timeouts: None,  # noqa: ARG001 - before `admin`, whose app makes the HTTP client
    admin: httpx.AsyncClient,
    database: Database,
    provider: str,
) -> None:
    with PROVIDERS[provider]() as (site, body):
        clean = await connect(admin, "clean", body)
        clean_run = await sync(admin, clean, "full")
        assert clean_run["status"] == "succeeded", clean_run["error"]
        requests = site.total_calls
        assert requests >= 5 * EVERY, f"{requests} requests: too few for every kind of fault"

        served_before = site.total_calls
        planned = plan_faults(site, requests * 2)
        chaotic = await connect(admin, "chaotic", body)
        run = await sync(admin, chaotic, "full")
        assert run["status"] == "succeeded", run["error"]
        served = {at: fault for at, fault in planned.items() if at not in site.faults}

    # The faults landed: one in ten of the requests the run made, every kind among them.
    made = site.total_calls - served_before
    assert len(served) >= made // EVERY - 1
    assert {str(kind) for kind in served.values()} == {str(kind) for kind in KINDS}
    # ...and changed nothing: the same items, fields and parents, each stored once.
    assert await stored(database, chaotic) == await stored(database, clean)
    assert run["fetched"] >= clean_run["fetched"]  # a retried page may be read twice
    keys = Counter(item[0] for item in await stored(database, chaotic))
    assert max(keys.values()) == 1
