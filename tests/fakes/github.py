"""A local GitHub REST API for issues, served over real HTTP.

Issues are cloned from GitHub's own example (``issue-items`` of the published OpenAPI
description in ../shared/upstream/github/rest), with labels, milestones and issue types from
the same examples. The server behaves as the recorded traffic shows: page-numbered ``Link``
headers pointing at ``/repositories/{id}/issues``, ``ETag`` with ``If-None-Match`` answered
by 304, ``X-RateLimit-*`` headers, pull requests mixed into the issue list, and the
sub-issue endpoint. Faults can be injected per call.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.serving import run_forever, serving, stalled, take_fault
from tests.upstream import load

TOKEN = "ghp_localtesttoken0123456789"
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
API = "https://api.github.com"
_ISSUE = load("github/rest/examples/issue-items.json")[0]
_LABEL = load("github/rest/examples/label-items.json")[0]
_MILESTONE = load("github/rest/examples/milestone.json")


def _github_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class GitHubSite:
    """The issues of some repositories, and how the server should misbehave."""

    base_url: str = ""  # set by `serve`, so links and URLs point back at the server
    repos: dict[str, int] = field(default_factory=dict)  # full name -> repository id
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    updated: dict[int, datetime] = field(default_factory=dict)
    by_number: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    not_modified: int = 0
    faults: dict[int, Any] = field(default_factory=dict)
    total_calls: int = 0
    clock: datetime = EPOCH
    next_id: int = 5000
    numbers: Counter[str] = field(default_factory=Counter)
    with_parent_url: bool = True
    children: dict[int, list[int]] = field(default_factory=dict)
    # GitHub now pages some lists with an opaque `after` cursor in the `next` link instead
    # of a page number (Singer's tap expects it for issues); both kinds are served.
    cursor_links: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    _order: dict[str, list[int]] = field(default_factory=dict)

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=3)
        return self.clock

    def repo(self, full_name: str) -> int:
        return self.repos.setdefault(full_name, 1000 + len(self.repos))

    def api(self, path: str) -> str:
        return (self.base_url or API) + path

    # Building the site -------------------------------------------------------------------
    def add(
        self,
        repo: str,
        *,
        title: str | None = None,
        labels: tuple[str, ...] = (),
        milestone: str | None = None,
        type_name: str | None = None,
        parent: int | None = None,
        pull_request: bool = False,
    ) -> int:
        """Open an issue (or a pull request) in ``repo``; returns its id."""
        self.repo(repo)
        self.next_id += 1
        self.numbers[repo] += 1
        issue_id, number = self.next_id, self.numbers[repo]
        raw = copy.deepcopy(_ISSUE)
        if not pull_request:
            del raw["pull_request"]
        stamp = self._tick()
        raw.update(
            id=issue_id,
            node_id=f"I_kwDO{issue_id}",
            number=number,
            title=title or f"Issue {repo}#{number}",
            url=self.api(f"/repos/{repo}/issues/{number}"),
            repository_url=self.api(f"/repos/{repo}"),
            html_url=f"https://github.com/{repo}/issues/{number}",
            state="open",
            state_reason=None,
            closed_at=None,
            created_at=_github_time(stamp),
            labels=[dict(_LABEL, id=9000 + i, name=name) for i, name in enumerate(labels)],
            milestone=dict(_MILESTONE, title=milestone) if milestone else None,
            type={"id": 1, "node_id": "IT_1", "name": type_name} if type_name else None,
            sub_issues_summary={"total": 0, "completed": 0, "percent_completed": 0},
        )
        if self.with_parent_url:
            raw["parent_issue_url"] = None
        self.issues[issue_id] = raw
        self.by_number[(repo, number)] = issue_id
        self._changed(issue_id, stamp)
        if parent is not None:
            self.attach(issue_id, parent)
        return issue_id

    def attach(self, child: int, parent: int) -> None:
        """Make ``child`` a sub-issue of ``parent``; both are updated, as on GitHub."""
        raw, parent_raw = self.issues[child], self.issues[parent]
        if self.with_parent_url:
            raw["parent_issue_url"] = parent_raw["url"]
        raw["_parent"] = parent
        self.children.setdefault(parent, []).append(child)
        parent_raw["sub_issues_summary"]["total"] += 1
        self._recount(parent)
        self._changed(child, self._tick())
        self._changed(parent, self._tick())

    def _recount(self, parent: int) -> None:
        summary = self.issues[parent]["sub_issues_summary"]
        done = sum(
            1 for child in self.children.get(parent, ())
            if child in self.issues and self.issues[child]["state"] == "closed"
        )  # fmt: skip
        summary["completed"] = done
        summary["percent_completed"] = done * 100 // summary["total"] if summary["total"] else 0

    def close(self, issue_id: int, reason: str = "completed") -> None:
        stamp = self._tick()
        raw = self.issues[issue_id]
        raw.update(state="closed", state_reason=reason, closed_at=_github_time(stamp))
        self._changed(issue_id, stamp)
        if raw.get("_parent") is not None:
            self._recount(raw["_parent"])

    def touch(self, issue_id: int, **fields: Any) -> None:
        self.issues[issue_id].update(fields)
        self._changed(issue_id, self._tick())

    def delete(self, issue_id: int) -> None:
        raw = self.issues.pop(issue_id)
        self.updated.pop(issue_id)
        self._order.clear()
        if raw.get("_parent") in self.issues:
            self.children[raw["_parent"]].remove(issue_id)
            self.issues[raw["_parent"]]["sub_issues_summary"]["total"] -= 1
            self._recount(raw["_parent"])

    def _changed(self, issue_id: int, when: datetime) -> None:
        self.updated[issue_id] = when
        self.issues[issue_id]["updated_at"] = _github_time(when)
        self._order.clear()

    def fail(self, call: int, fault: Any) -> None:
        """Answer the ``call``-th request from now with ``fault``: (status, headers) or "reset"."""
        self.faults[self.total_calls + call] = fault

    # Queries ------------------------------------------------------------------------------
    def repo_of(self, issue_id: int) -> str:
        return str(self.issues[issue_id]["repository_url"]).split("/repos/", 1)[1]

    def listing(self, repo: str) -> list[int]:
        """A repository's issues and pull requests by (updated, id)."""
        if repo not in self._order:
            mine = [i for i in self.issues if self.repo_of(i) == repo]
            self._order[repo] = sorted(mine, key=lambda i: (self.updated[i], i))
        return self._order[repo]

    def public(self, issue_id: int) -> dict[str, Any]:
        return {k: v for k, v in self.issues[issue_id].items() if not k.startswith("_")}


def _link(site: GitHubSite, repo_id: int, query: dict[str, Any], page: int, last: int) -> str:
    def url(n: int) -> str:
        where = {"after": f"Y3Vyc29yOnYyOpK{n:06d}"} if site.cursor_links else {"page": n}
        return site.api(f"/repositories/{repo_id}/issues?" + urlencode(query | where))

    if site.cursor_links:
        return f'<{url(page + 1)}>; rel="next"' if page < last else ""
    rels = []
    if page > 1:
        rels += [f'<{url(page - 1)}>; rel="prev"']
    if page < last:
        rels += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        rels += [f'<{url(1)}>; rel="first"']
    return ", ".join(rels)


def build_app(site: GitHubSite) -> Any:
    def problem(status: int, message: str) -> JSONResponse:
        return JSONResponse(
            {"message": message, "documentation_url": "https://docs.github.com/rest"},
            status_code=status,
        )

    def paged(request: Request, rows: list[int], query: dict[str, Any], repo_id: int) -> Response:
        per_page = min(100, int(request.query_params.get("per_page", 30)))
        page = max(1, int(request.query_params.get("page", 1)))
        if "after" in request.query_params:
            page = int(request.query_params["after"][-6:])
        last = max(1, -(-len(rows) // per_page))
        chosen = rows[(page - 1) * per_page : page * per_page]
        body = json.dumps([site.public(i) for i in chosen]).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Link": _link(site, repo_id, query, page, last)}
        if request.headers.get("if-none-match") == etag:
            site.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers=headers)

    def repo_name(request: Request) -> str | None:
        params = request.path_params
        if "repo_id" in params:
            wanted = int(params["repo_id"])
            return next((name for name, rid in site.repos.items() if rid == wanted), None)
        name = f"{params['owner']}/{params['repo']}"
        return next((known for known in site.repos if known.lower() == name.lower()), None)

    async def repository(request: Request) -> Response:
        name = repo_name(request)
        if name is None:
            return problem(404, "Not Found")
        owner = name.split("/")[0]
        return JSONResponse(
            {"id": site.repos[name], "full_name": name, "name": name.split("/")[1],
             "owner": {"login": owner}, "has_issues": True}
        )  # fmt: skip

    async def list_issues(request: Request) -> Response:
        name = repo_name(request)
        if name is None:
            return problem(404, "Not Found")
        q = request.query_params
        state = q.get("state", "open")
        if q.get("sort", "created") not in ("created", "updated"):
            return problem(422, "Validation Failed")
        with site.lock:
            rows = list(site.listing(name))
        if q.get("sort", "created") == "created":
            rows.sort(key=lambda i: (site.issues[i]["created_at"], i))
        if "since" in q:
            since = _parse(q["since"])
            rows = [i for i in rows if site.updated[i] >= since]
        if state != "all":
            rows = [i for i in rows if site.issues[i]["state"] == state]
        if q.get("direction", "desc") == "desc":
            rows.reverse()
        query = {k: v for k, v in q.items() if k not in ("page", "after")}
        return paged(request, rows, query, site.repos[name])

    async def sub_issues(request: Request) -> Response:
        name = repo_name(request)
        number = int(request.path_params["number"])
        parent = site.by_number.get((name or "", number))
        if parent is None or parent not in site.issues:
            return problem(404, "Not Found")
        children = sorted(site.children.get(parent, ()))
        return paged(request, children, {"per_page": request.query_params.get("per_page", 30)},
                     site.repos[name or ""])  # fmt: skip

    async def rate_limit(_: Request) -> Response:
        core = {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600, "used": 1}
        return JSONResponse({"resources": {"core": core}, "rate": core})

    async def graphql(request: Request) -> Response:
        """Only what Singer's tap asks before it lists: repository ids by owner and name."""
        query = (await request.json())["query"]
        data: dict[str, Any] = {"rateLimit": {"cost": 1}}
        for alias, name, owner in re.findall(
            r'(\w+): repository\(name: "([^"]+)", owner: "([^"]+)"\)', query
        ):
            full = f"{owner}/{name}"
            data[alias] = (
                {"nameWithOwner": full, "databaseId": site.repos[full]}
                if full in site.repos else None
            )  # fmt: skip
        return JSONResponse({"data": data})

    routes = [
        Route("/rate_limit", rate_limit),
        Route("/graphql", graphql, methods=["POST"]),
        Route("/repos/{owner}/{repo}", repository),
        Route("/repos/{owner}/{repo}/issues", list_issues),
        Route("/repositories/{repo_id:int}/issues", list_issues),
        Route("/repos/{owner}/{repo}/issues/{number:int}/sub_issues", sub_issues),
    ]
    inner = Starlette(routes=routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        fault = await stalled(take_fault(site, scope["path"]))
        if fault == "reset":
            raise ConnectionResetError("injected reset")  # uvicorn drops the connection
        if fault is not None:
            status, headers = fault
            message = "API rate limit exceeded" if status in (403, 429) else "Server Error"
            await JSONResponse({"message": message}, status_code=status, headers=headers)(
                scope, receive, send
            )
            return
        request = Request(scope, receive)
        if request.headers.get("authorization") not in (f"Bearer {TOKEN}", f"token {TOKEN}"):
            await problem(401, "Bad credentials")(scope, receive, send)
            return

        async def send_with_limits(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"x-ratelimit-limit", b"5000"),
                    (b"x-ratelimit-remaining", b"4999"),
                    (b"x-ratelimit-reset", str(int(time.time()) + 3600).encode()),
                    (b"x-ratelimit-used", b"1"),
                    (b"x-ratelimit-resource", b"core"),
                ]
            await send(message)

        await inner(scope, receive, send_with_limits)

    return app


@contextmanager
def serve(site: GitHubSite) -> Iterator[str]:
    """Serve ``site`` on a loopback port until the block ends; yields its API URL."""
    with serving(build_app(site), "GitHub") as port:
        site.base_url = f"http://127.0.0.1:{port}"
        for raw in site.issues.values():  # issues added before the port was known
            for key in ("url", "repository_url", "parent_issue_url"):
                if raw.get(key):
                    raw[key] = raw[key].replace(API, site.base_url)
        yield site.base_url


def populate(site: GitHubSite, repos: tuple[str, ...], issues: int) -> None:
    """Epics (by type in the first repository, by label elsewhere) with sub-issues, some
    closed, a few as not planned, and a pull request every 10 issues."""
    made = 0
    while made < issues:
        for repo in repos:
            if made >= issues:
                break
            epic = site.add(
                repo,
                type_name="Epic" if repo == repos[0] else None,
                labels=() if repo == repos[0] else ("epic",),
                milestone="2025-Q2",
            )
            made += 1
            for n in range(min(9, issues - made)):
                child = site.add(repo, labels=("backend",) if n % 2 else (), parent=epic)
                made += 1
                if n % 3 == 0:
                    site.close(child, "not_planned" if n == 6 else "completed")
            site.add(repo, title="Bump dependencies", pull_request=True)


def main() -> None:
    """Serve a generated site until killed: ``python -m tests.fakes.github --issues N``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--issues", type=int, required=True)
    parser.add_argument("--repos", nargs="+", default=["acme/api", "acme/web"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cursor-links", action="store_true")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds to wait before each answer"
    )
    args = parser.parse_args()
    site = GitHubSite(base_url=f"http://127.0.0.1:{args.port}", cursor_links=args.cursor_links)
    populate(site, tuple(args.repos), args.issues)
    app = build_app(site)
    if args.delay:
        app = slowed(app, args.delay)
    run_forever(app, args.port)


def slowed(app: Any, delay: float) -> Any:
    """``app``, answering each request ``delay`` seconds late (a slow provider)."""
    import asyncio

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(delay)
        await app(scope, receive, send)

    return late


if __name__ == "__main__":
    main()
