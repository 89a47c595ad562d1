"""A local Jira, Cloud or Data Center, served over real HTTP for the real ``jira`` library.

Issues are cloned from real Jira Cloud issues (devlake's captures in ../shared/upstream),
statuses and fields come from the same captures, and the endpoints keep the limits Atlassian
documents (jira/NOTES.md): 5,000 ids a search page when only ids are asked for, 1,000 issues
a bulk fetch with a named field list, the 10,000-result window on Data Center, 410 for the
old Cloud search. Faults can be injected per call.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.serving import run_forever, serving, stalled, take_fault
from tests.upstream import jsonl

_CAPTURED = {issue["key"]: issue for _, issue in jsonl("jira/devlake/agile-board-issues.jsonl")}
_DROP = ("comment", "worklog", "attachment", "changelog", "closedSprints", "sprint", "epic")


def _template(key: str) -> dict[str, Any]:
    raw = copy.deepcopy(_CAPTURED[key])
    for name in _DROP:
        raw["fields"].pop(name, None)
        raw.pop(name, None)
    return raw


_TEMPLATES = {key: _template(key) for key in ("EE-1", "EE-25", "K5-4")}
STATUSES = [status for _, status in jsonl("jira/devlake/statuses.jsonl")]
TODO, IN_PROGRESS, DONE = "10033", "3", "10034"
_STATUS = {s["id"]: s for s in STATUSES}
EMAIL, API_TOKEN, PAT = "bot@example.com", "cloud-api-token-0123", "dc-personal-access-token"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

CLOUD_FIELDS = {"story_points": "customfield_10016", "board_points": "customfield_10024"}
DC_FIELDS = {
    "story_points": "customfield_10002",
    "epic_link": "customfield_10100",
    "parent_link": "customfield_10200",
}


def jira_time(moment: datetime) -> str:
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}"
        + (moment.strftime("%z"))
    )


def _fields_catalogue(cloud: bool) -> list[dict[str, Any]]:
    from tests.upstream import jsonl as rows

    captured = [f for _, f in rows("jira/devlake/fields-datacenter.jsonl")]
    system = [
        {"id": name, "name": name.title(), "custom": False, "schema": {"type": "string"}}
        for name in ("summary", "status", "issuetype", "created", "updated", "labels", "parent")
    ]

    def custom(fid: str, name: str, kind: str, plugin: str) -> dict[str, Any]:
        return {"id": fid, "name": name, "custom": True, "schema": {"type": kind, "custom": plugin}}

    if cloud:
        extra = [
            custom(
                "customfield_10016",
                "Story point estimate",
                "number",
                "com.pyxis.greenhopper.jira:jsw-story-points",
            ),
            custom(
                "customfield_10024",
                "Story Points",
                "number",
                "com.atlassian.jira.plugin.system.customfieldtypes:float",
            ),
        ]
    else:
        extra = [
            custom(
                "customfield_10002",
                "Story Points",
                "number",
                "com.pyxis.greenhopper.jira:jsw-story-points",
            ),
            custom(
                "customfield_10100", "Epic Link", "any", "com.pyxis.greenhopper.jira:gh-epic-link"
            ),
            custom(
                "customfield_10200",
                "Parent Link",
                "any",
                "com.atlassian.jpo:jpo-custom-field-parent",
            ),
        ]
    return system + captured + extra


@dataclass
class JiraSite:
    """The state of one Jira site, and how its server should misbehave."""

    cloud: bool = True
    user_zone: str = "Europe/Berlin"
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    faults: dict[int, Any] = field(default_factory=dict)
    total_calls: int = 0
    clock: datetime = EPOCH
    next_id: int = 10000
    numbers: Counter[str] = field(default_factory=Counter)
    result_window: int = 10_000  # Data Center's limit on startAt + maxResults
    # Seconds every answer takes, as a remote Jira's do; the paths being answered now; and
    # each pair of paths that were once in flight together (what a client overlapping its
    # calls shows).
    latency: float = 0.0
    on_search: Callable[[], None] | None = None  # runs as each search arrives (an edit, say)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlapped: set[frozenset[str]] = field(default_factory=set)
    # Parsed update times and the search order, kept so a search does not re-sort the site.
    updated: dict[str, datetime] = field(default_factory=dict)
    _order: list[str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def points_field(self) -> str:
        return (CLOUD_FIELDS if self.cloud else DC_FIELDS)["story_points"]

    # Building the site -------------------------------------------------------------------
    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=7)
        return self.clock

    def add(
        self,
        *,
        project: str = "PAY",
        kind: str = "story",
        status: str = TODO,
        resolution: str | None = None,
        parent: str | None = None,
        points: Any = None,
        labels: tuple[str, ...] = (),
        zone: str = "+0800",
    ) -> str:
        """Add an issue (cloned from a captured one); returns its id."""
        template = _TEMPLATES[{"story": "EE-1", "subtask": "EE-25", "epic": "K5-4"}[kind]]
        # Shallow copies: the parts that change are replaced, the rest is shared and only
        # ever serialised, which keeps a 100k-issue site cheap to build.
        raw = dict(template)
        raw["fields"] = dict(template["fields"])
        self.next_id += 1
        issue_id = str(self.next_id)
        self.numbers[project] += 1
        key = f"{project}-{self.numbers[project]}"
        created = self._tick()
        offset = datetime.strptime(zone, "%z").tzinfo
        fields = raw["fields"]
        fields.update(
            status=None,  # the captured status is replaced by this issue's own history
            summary=f"{kind.title()} {key}",
            created=jira_time(created.astimezone(offset)),
            labels=list(labels),
            project={"id": "100", "key": project, "name": project.title()},
            parent=None,
        )
        if kind == "epic":
            fields["issuetype"] = {"id": "10000", "name": "Epic", "subtask": False}
            if self.cloud:
                fields["issuetype"]["hierarchyLevel"] = 1
        raw.update(id=issue_id, key=key, self=f"https://jira.test/rest/api/2/issue/{issue_id}")
        if parent is not None:
            parent_raw = self.issues[parent]
            if kind == "subtask" or self.cloud:
                fields["parent"] = {"id": parent, "key": parent_raw["key"]}
            else:
                fields[DC_FIELDS["epic_link"]] = parent_raw["key"]
        fields[self.points_field] = points
        self.issues[issue_id] = raw
        self.histories[issue_id] = []
        # Born in To Do; work that has started went through In Progress, as in a workflow.
        self.move(issue_id, TODO, at=created)
        if status != TODO:
            self.move(issue_id, IN_PROGRESS, at=created + timedelta(seconds=20))
        if status not in (TODO, IN_PROGRESS):
            self.move(issue_id, status, resolution, at=created + timedelta(seconds=40))
        return issue_id

    def move(
        self,
        issue_id: str,
        status: str,
        resolution: str | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Change status (recording the transition in the changelog) and touch the issue."""
        when = at or self._tick()
        self.clock = max(self.clock, when)  # time at the site never runs backwards
        fields = self.issues[issue_id]["fields"]
        previous = (fields.get("status") or {}).get("id")
        fields["status"] = copy.deepcopy(_STATUS[status])
        done = _STATUS[status]["statusCategory"]["key"] == "done"
        fields["resolution"] = {"id": "1", "name": resolution or "Done"} if done else None
        fields["resolutiondate"] = jira_time(when) if done else None
        fields["updated"] = jira_time(when.astimezone(_offset(fields["created"])))
        self._changed(issue_id, when)
        if previous is not None and previous != status:
            self.histories[issue_id].append(
                {
                    "id": str(len(self.histories[issue_id]) + 1),
                    "created": jira_time(when),
                    "items": [
                        {
                            "field": "status",
                            "fieldtype": "jira",
                            "fieldId": "status",
                            "from": previous,
                            "to": status,
                            "fromString": _STATUS[previous]["name"],
                            "toString": _STATUS[status]["name"],
                        },
                    ],
                }
            )

    def touch(self, issue_id: str, **fields: Any) -> None:
        self.issues[issue_id]["fields"].update(fields)
        stamp = self._tick()
        created = self.issues[issue_id]["fields"]["created"]
        self.issues[issue_id]["fields"]["updated"] = jira_time(stamp.astimezone(_offset(created)))
        self._changed(issue_id, stamp)

    def delete(self, issue_id: str) -> None:
        del self.issues[issue_id]
        del self.updated[issue_id]
        self._order = None

    def _changed(self, issue_id: str, when: datetime) -> None:
        # Jira keeps millisecond precision.
        self.updated[issue_id] = when.replace(microsecond=when.microsecond // 1000 * 1000)
        self._order = None

    def ordered(self) -> list[str]:
        """Issue ids by (updated, key): what every search sorts by."""
        if self._order is None:
            self._order = sorted(
                self.issues, key=lambda i: (self.updated[i], _key_order(self.issues[i]["key"]))
            )
        return self._order

    def fail(self, call: int, fault: Any) -> None:
        """Answer the ``call``-th request from now with ``fault``: (status, headers), "reset",
        or "garbled" (200 with a body that is not JSON)."""
        self.faults[self.total_calls + call] = fault

    # Queries ------------------------------------------------------------------------------
    def search(self, jql: str) -> list[dict[str, Any]]:
        return [self.issues[i] for i in self._matching(jql)]

    def _matching(self, jql: str) -> list[str]:
        zone = ZoneInfo(self.user_zone)
        body, _, order = jql.partition(" ORDER BY ")
        if order and order.strip() != "updated ASC, key ASC":
            raise JqlError(f"unsupported ORDER BY {order}")
        clauses = [c.strip() for c in re.split(r"\s+AND\s+", body) if c.strip()]
        keep = self.ordered()
        for clause in clauses:
            if clause.startswith("(") and clause.endswith(")"):  # the scope, bracketed
                clause = clause[1:-1].strip()
            if m := re.fullmatch(r'updated (>=|<=) "(\d{4}/\d{2}/\d{2} \d{2}:\d{2})"', clause):
                bound = datetime.strptime(m[2], "%Y/%m/%d %H:%M").replace(tzinfo=zone)
                if m[1] == ">=":
                    keep = [i for i in keep if self.updated[i] >= bound]
                else:
                    keep = [i for i in keep if self.updated[i] <= bound]
            elif m := re.fullmatch(r"project\s*=\s*(\w+)", clause):
                keep = [i for i in keep if self.issues[i]["fields"]["project"]["key"] == m[1]]
            elif m := re.fullmatch(r"issue in \(([\d, ]+)\)", clause):
                wanted = {i.strip() for i in m[1].split(",")}
                if absent := sorted(wanted - set(self.issues)):
                    # As Jira answers a search naming an issue that does not exist.
                    raise JqlError(
                        f"An issue with key '{absent[0]}' does not exist for field 'issue'."
                    )
                keep = [i for i in keep if i in wanted]
            elif m := re.fullmatch(r"project in \(([\w, ]+)\)", clause):
                wanted = {p.strip() for p in m[1].split(",")}
                keep = [i for i in keep if self.issues[i]["fields"]["project"]["key"] in wanted]
            else:
                raise JqlError(f"Error in the JQL Query: cannot parse {clause!r}")
        return keep

    def shaped(self, issue_id: str, fields: list[str] | None) -> dict[str, Any]:
        raw = self.issues[issue_id]
        out = {k: v for k, v in raw.items() if k != "fields"}
        out["fields"] = (
            raw["fields"] if fields is None else {f: raw["fields"].get(f) for f in fields}
        )
        return out


def populate(site: JiraSite, stories: int) -> None:
    """Epics of 9 stories each; every third story has a sub-task; statuses vary."""
    statuses = [TODO, IN_PROGRESS, DONE]
    epic = ""
    for n in range(stories):
        if n % 9 == 0:
            epic = site.add(kind="epic", labels=("okr",))
        story = site.add(parent=epic, status=statuses[n % 3], points=[3, "5", None, 2.5][n % 4])
        if n % 3 == 0:
            site.add(kind="subtask", parent=story, status=statuses[(n + 1) % 3])


def stories_for(issues: int) -> int:
    """How many stories ``populate`` needs for about ``issues`` issues (13 per 9 stories)."""
    return max(1, issues * 9 // 13)


class JqlError(Exception):
    pass


def _parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def _offset(value: str) -> Any:
    return _parse(value).tzinfo


def _key_order(key: str) -> tuple[str, int]:
    project, _, number = key.partition("-")
    return project, int(number)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset_of(token: str | None) -> int:
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0


def build_app(site: JiraSite) -> Any:
    def error(status: int, *messages: str) -> JSONResponse:
        return JSONResponse({"errorMessages": list(messages), "errors": {}}, status_code=status)

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if site.cloud:
            expected = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {PAT}"

    async def server_info(request: Request) -> Response:
        return JSONResponse(
            {
                "baseUrl": str(request.base_url).rstrip("/"),
                "version": "1001.0.0" if site.cloud else "9.12.4",
                "deploymentType": "Cloud" if site.cloud else "Server",
            }
        )

    async def myself(_: Request) -> Response:
        return JSONResponse(
            {
                "accountId": "5b10a2844c20165700ede21g",
                "displayName": "okr-sync bot",
                "emailAddress": EMAIL,
                "timeZone": site.user_zone,
                "active": True,
            }
        )

    async def fields(_: Request) -> Response:
        return JSONResponse(_fields_catalogue(site.cloud))

    async def statuses(_: Request) -> Response:
        return JSONResponse(STATUSES)

    async def board_configuration(request: Request) -> Response:
        return JSONResponse(
            {
                "id": int(request.path_params["board"]),
                "name": "PAY board",
                "estimation": {
                    "type": "field",
                    "field": {
                        "fieldId": CLOUD_FIELDS["board_points"],
                        "displayName": "Story Points",
                    },
                },
            }
        )

    async def search_jql(request: Request) -> Response:
        if not site.cloud:
            return error(404, "Not found")
        body = await request.json() if request.method == "POST" else dict(request.query_params)
        wanted = body.get("fields") or ["id"]
        ids_only = set(wanted) <= {"id", "key"}
        limit = min(int(body.get("maxResults", 50)), 5000 if ids_only else 100)
        if site.on_search is not None:
            site.on_search()
        try:
            matching = site._matching(body.get("jql", ""))
        except JqlError as exc:
            return error(400, str(exc))
        start = _offset_of(body.get("nextPageToken"))
        page = matching[start : start + limit]
        issues = [{"id": i} if ids_only else site.shaped(i, list(wanted)) for i in page]
        last = start + limit >= len(matching)
        return JSONResponse(
            {"issues": issues, "isLast": last}
            | ({} if last else {"nextPageToken": _token(start + limit)})
        )

    async def old_search(request: Request) -> Response:
        if site.cloud:
            return error(
                410, "The requested API has been removed. Please migrate to /rest/api/3/search/jql."
            )
        params = request.query_params
        limit = min(int(params.get("maxResults", 50)), 1000)
        start = int(params.get("startAt", 0))
        if start + limit > site.result_window:
            return error(
                400,
                f"The result window is too large: startAt + maxResults must not exceed "
                f"{site.result_window}.",
            )
        if site.on_search is not None:
            site.on_search()
        try:
            matching = site._matching(params.get("jql", ""))
        except JqlError as exc:
            return error(400, str(exc))
        wanted = params["fields"].split(",") if params.get("fields") else None
        issues = []
        for issue_id in matching[start : start + limit]:
            shaped = site.shaped(issue_id, wanted)
            if "changelog" in params.get("expand", ""):
                histories = site.histories[issue_id]
                shaped["changelog"] = {
                    "startAt": 0,
                    "maxResults": len(histories),
                    "total": len(histories),
                    "histories": histories,
                }
            issues.append(shaped)
        return JSONResponse(
            {"startAt": start, "maxResults": limit, "total": len(matching), "issues": issues}
        )

    async def bulkfetch(request: Request) -> Response:
        body = await request.json()
        wanted = body.get("fields")
        ids = [str(i) for i in body.get("issueIdsOrKeys", [])]
        cap = 1000 if wanted and len(wanted) <= 100 else 100
        if len(ids) > cap:
            return error(400, f"at most {cap} issues a request")
        found = [site.shaped(i, wanted) for i in ids if i in site.issues]
        missing = [
            {"id": i, "errorMessage": "Issue does not exist"} for i in ids if i not in site.issues
        ]
        return JSONResponse({"issues": found, "issueErrors": missing})

    async def changelog_bulkfetch(request: Request) -> Response:
        body = await request.json()
        ids = [str(i) for i in body.get("issueIdsOrKeys", [])]
        if len(ids) > 1000:
            return error(400, "at most 1000 issues a request")
        wanted = set(body.get("fieldIds") or [])
        limit = min(int(body.get("maxResults", 1000)), 1000)
        start = _offset_of(body.get("nextPageToken"))
        logs = []
        for issue_id in ids[start : start + limit]:
            histories = [
                h
                for h in site.histories.get(issue_id, [])
                if not wanted or any(item["fieldId"] in wanted for item in h["items"])
            ]
            logs.append({"issueId": issue_id, "changeHistories": histories})
        more = start + limit < len(ids)
        return JSONResponse(
            {"issueChangeLogs": logs} | ({"nextPageToken": _token(start + limit)} if more else {})
        )

    routes = [
        Route("/rest/api/2/serverInfo", server_info),
        Route("/rest/api/{v:int}/myself", myself),
        Route("/rest/api/{v:int}/field", fields),
        Route("/rest/api/{v:int}/status", statuses),
        Route("/rest/agile/1.0/board/{board:int}/configuration", board_configuration),
        Route("/rest/api/{v:int}/search/jql", search_jql, methods=["GET", "POST"]),
        Route("/rest/api/{v:int}/search", old_search, methods=["GET", "POST"]),
        Route("/rest/api/3/issue/bulkfetch", bulkfetch, methods=["POST"]),
        Route("/rest/api/3/changelog/bulkfetch", changelog_bulkfetch, methods=["POST"]),
    ]
    inner = Starlette(routes=routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        fault = await stalled(take_fault(site, scope["path"]))
        if fault == "reset":
            raise ConnectionResetError("injected reset")  # uvicorn drops the connection
        if fault == "garbled":  # what a proxy in between may answer
            page = "<html><body>502 Bad Gateway</body></html>"
            await Response(page, media_type="text/html")(scope, receive, send)
            return
        if fault is not None:
            status, headers = fault
            await JSONResponse(
                {"errorMessages": ["injected"]}, status_code=status, headers=headers
            )(scope, receive, send)
            return
        request = Request(scope, receive)
        if not authorized(request):
            await Response(
                status_code=401, headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
            )(scope, receive, send)
            return
        path = scope["path"]
        with site.lock:
            site.overlapped.update(frozenset((path, other)) for other in +site.in_flight)
            site.in_flight[path] += 1
        try:
            if site.latency:
                await asyncio.sleep(site.latency)
            await inner(scope, receive, send)
        finally:
            with site.lock:
                site.in_flight[path] -= 1

    return app


@contextmanager
def serve(site: JiraSite) -> Iterator[str]:
    """Serve ``site`` on a loopback port until the block ends; yields its base URL."""
    with serving(build_app(site), "Jira") as port:
        yield f"http://127.0.0.1:{port}"


def main() -> None:
    """Serve a generated site until killed: ``python -m tests.fakes.jira --issues N``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--issues", type=int, required=True)
    parser.add_argument("--deployment", choices=["cloud", "datacenter"], default="cloud")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each answer takes")
    args = parser.parse_args()
    site = JiraSite(cloud=args.deployment == "cloud", latency=args.latency)
    populate(site, stories_for(args.issues))
    run_forever(build_app(site), args.port)


if __name__ == "__main__":
    main()
