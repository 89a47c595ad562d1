"""The GitHub Issues connector: REST over httpx, github.com or Enterprise Server.

Each repository is listed with ``GET /repos/{owner}/{repo}/issues?state=all&sort=updated
&direction=asc&per_page=100``, pull requests dropped. The listing is read by update time: after
each page the next request starts again from the page's last update time (less a second, as
``since`` has second resolution) rather than following the ``page=N`` link, because page
numbers over a list sorted by update time skip an issue whenever an issue already read is
updated during the sync and moves to the end. The ``Link`` header still says whether more
pages follow, and its ``next`` link is followed when a whole page shares one second. Resuming
from any page's cursor therefore loses nothing; the overlap is harmless because upserts are
idempotent.

Parents come from each issue's ``parent_issue_url``, which costs no call. The sub-issue
endpoint is called only for issues whose ``sub_issues_summary.total`` is above the number of
their sub-issues seen so far, to bring in sub-issues that live in repositories the
connection does not list (down to GitHub's 8 levels).

The last request of each repository is kept in the cursor with its ``ETag``; the next
incremental sync repeats it with ``If-None-Match``, and a ``304`` (free of rate limit) means
the repository has not changed.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from connectors.base import Connector
from connectors.errors import Permanent
from connectors.github import webhooks
from connectors.github.config import GitHubConfig, GitHubCredentials
from connectors.github.mapping import issue_key, normalize, repo_of
from connectors.grouping import grouped
from connectors.http import Requester, retry_after
from connectors.models import Page, WorkItem
from connectors.prefetch import ahead
from connectors.webhooks import WebhookEvent, WebhookRequest

PER_PAGE = 100
MAX_DEPTH = 8  # GitHub's limit on sub-issue nesting
API_VERSION = "2022-11-28"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def next_link(response: httpx.Response) -> str | None:
    found = _NEXT.search(response.headers.get("link", ""))
    return found[1] if found else None


def rate_limit_wait(response: httpx.Response) -> float | None:
    """Primary limits send ``X-RateLimit-Remaining: 0`` and the reset time; secondary limits
    send ``Retry-After``, or nothing, in which case GitHub asks for at least a minute."""
    if response.status_code not in (403, 429):
        return None
    now = time.time()
    asked = retry_after(response.headers, now)
    if asked is not None:
        return asked
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(response.headers["x-ratelimit-reset"]) - now)
        except (KeyError, ValueError):
            return 60.0
    if response.status_code == 429 or "secondary rate limit" in response.text.lower():
        return 60.0
    return None


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RepoState:
    """Where a repository's listing stands: the ``since`` of its next request, and the ETag
    of that request's last answer when the listing was complete."""

    since: str | None = None
    etag: str | None = None


@dataclass
class Cursor:
    repos: dict[str, RepoState] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(
            {"v": 1, "repos": {r: [s.since, s.etag] for r, s in sorted(self.repos.items())}}
        )

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls({repo: RepoState(*state) for repo, state in data.get("repos", {}).items()})


@dataclass
class _Hierarchy:
    """Sub-issue totals against the sub-issues seen, for one fetch."""

    totals: dict[str, int] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)


class GitHubConnector(Connector[GitHubConfig, GitHubCredentials]):
    provider: ClassVar[str] = "github"
    config_model: ClassVar[type[BaseModel]] = GitHubConfig
    credentials_model: ClassVar[type[BaseModel]] = GitHubCredentials

    @property
    def requester(self) -> Requester:
        return Requester(
            self.http,
            provider="GitHub",
            stats=self.stats,
            headers={
                "Authorization": f"Bearer {self.credentials.token.get_secret_value()}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            rate_limited=rate_limit_wait,
        )

    def _url(self, path: str) -> str:
        return self.config.api_url.rstrip("/") + path

    async def check(self) -> None:
        requester = self.requester
        for repo in self.config.repos:
            await requester.send("GET", self._url(f"/repos/{repo}"), what=f"repository {repo}")

    def verify_webhook(self, request: WebhookRequest, secret: str) -> None:
        webhooks.verify(request, secret)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        return webhooks.parse(
            request, team_map=self.config.team_map, epic_labels=self.config.epic_labels
        )

    def _normalize(self, raw: dict[str, Any], parent_key: str | None = None) -> WorkItem:
        return normalize(
            raw,
            team_map=self.config.team_map,
            epic_labels=self.config.epic_labels,
            parent_key=parent_key,
        )

    async def fetch(self, cursor: str | None) -> AsyncGenerator[Page, None]:
        state = Cursor.decode(cursor)
        hierarchy = _Hierarchy()
        async for page in ahead(grouped(self._pages(state, hierarchy))):
            yield page

    async def _pages(self, cursor: Cursor, hierarchy: _Hierarchy) -> AsyncIterator[Page]:
        # Each page carries the cursor encoded when it was read: the next page is fetched
        # ahead, and its state must not leak into this page's checkpoint.
        requester = self.requester
        for repo in self.config.repos:
            state = cursor.repos.get(repo) or RepoState()
            since, etag = state.since, state.etag
            url: str | None = None  # a `next` link being followed within one second
            previous: dict[str, str] = {}
            while True:
                params: dict[str, Any] | None = None
                if url is None:
                    params = {"state": "all", "sort": "updated", "direction": "asc"}
                    params["per_page"] = PER_PAGE
                    if since is not None:
                        params["since"] = since
                headers = {"If-None-Match": etag} if etag else None
                response = await requester.send(
                    "GET",
                    url or self._url(f"/repos/{repo}/issues"),
                    params=params,
                    headers=headers,
                    what=f"issues of {repo}",
                )
                etag = None
                if response.status_code == 304:
                    break
                raws: list[dict[str, Any]] = response.json()
                # Pull requests share the list; the overlap repeats the last page's end.
                fresh = [
                    raw for raw in raws
                    if "pull_request" not in raw
                    and previous.get(str(raw["id"])) != raw["updated_at"]
                ]  # fmt: skip
                previous = {str(raw["id"]): raw["updated_at"] for raw in raws}
                items = [self._normalize(raw) for raw in fresh]
                items += await self._outside_sub_issues(requester, fresh, items, hierarchy)
                more = next_link(response)
                if more is None:
                    cursor.repos[repo] = RepoState(since, response.headers.get("etag"))
                    yield Page(items=tuple(items), cursor=cursor.encode())
                    break
                newest = max(datetime.fromisoformat(raw["updated_at"]) for raw in raws)
                restart = _stamp(newest - timedelta(seconds=1))
                if since is None or restart > since:
                    since, url = restart, None
                else:  # a whole page within one second: page on through it
                    url = more
                cursor.repos[repo] = RepoState(since)
                yield Page(items=tuple(items), cursor=cursor.encode())

    async def _outside_sub_issues(
        self,
        requester: Requester,
        raws: list[dict[str, Any]],
        items: list[WorkItem],
        hierarchy: _Hierarchy,
        depth: int = 1,
    ) -> list[WorkItem]:
        """Sub-issues of these issues that the listing of the configured repositories will
        not bring: only parents with more sub-issues than seen so far cost a call."""
        for item in items:
            if item.parent_key:
                hierarchy.seen[item.parent_key] += 1
        for raw, item in zip(raws, items, strict=True):
            total = int((raw.get("sub_issues_summary") or {}).get("total") or 0)
            if total:
                hierarchy.totals[item.key] = total
        listed = {repo.lower() for repo in self.config.repos}
        found: list[WorkItem] = []
        found_raws: list[dict[str, Any]] = []
        for raw, item in zip(raws, items, strict=True):
            if hierarchy.seen[item.key] >= hierarchy.totals.get(item.key, 0):
                continue
            async for child in self._sub_issues(requester, raw):
                if repo_of(child).lower() in listed or "pull_request" in child:
                    continue
                found_raws.append(child)
                found.append(self._normalize(child, parent_key=item.key))
        if found and depth < MAX_DEPTH:
            found += await self._outside_sub_issues(
                requester, found_raws, found, hierarchy, depth + 1
            )
        return found

    async def _sub_issues(
        self, requester: Requester, parent: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        repo = repo_of(parent)
        url: str | None = self._url(f"/repos/{repo}/issues/{parent['number']}/sub_issues")
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        while url is not None:
            response = await requester.send(
                "GET", url, params=params, what=f"sub-issues of {issue_key(repo, parent['number'])}"
            )
            if response.status_code == 304:
                raise Permanent("GitHub answered 304 to a request without a validator")
            for child in response.json():
                yield child
            url, params = next_link(response), None
