"""A local Linear GraphQL API, served over real HTTP.

Every request is parsed, validated and executed by graphql-core against Linear's published
schema (../shared/upstream/linear/schema.graphql), so a document Linear would reject fails
here too; resolvers serve an in-memory workspace. Answers carry Linear's rate-limit headers,
and the complexity of each query is computed with Linear's documented rules. Faults can be
injected per call, including Linear's ``RATELIMITED`` error.
"""

from __future__ import annotations

import bisect
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from tests.fakes.serving import run_forever, serving, stalled, take_fault
from tests.upstream import UPSTREAM

API_KEY = "lin_api_localtestkey0123456789"
EPOCH = datetime(2025, 6, 1, tzinfo=UTC)
MAX_COMPLEXITY = 10_000
MAX_FIRST = 250


@functools.cache
def schema() -> graphql.GraphQLSchema:
    return graphql.build_schema((UPSTREAM / "linear" / "schema.graphql").read_text())


def complexity(document: graphql.DocumentNode, variables: dict[str, Any] | None = None) -> float:
    """Linear's documented scoring: 0.1 a scalar, 1 an object, and a connection's children
    multiplied by its ``first`` (50 when absent)."""
    values = dict(variables or {})
    operation = next(
        d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)
    )
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None and definition.variable.name.value not in values:
            values[definition.variable.name.value] = graphql.value_from_ast_untyped(
                definition.default_value
            )

    def first_of(node: graphql.FieldNode) -> int:
        for argument in node.arguments:
            if argument.name.value == "first":
                value = graphql.value_from_ast_untyped(argument.value, values)
                return int(value) if value is not None else 50
        return 50

    def cost(selections: graphql.SelectionSetNode, parent: graphql.GraphQLObjectType) -> float:
        total = 0.0
        for node in selections.selections:
            assert isinstance(node, graphql.FieldNode)
            named = graphql.get_named_type(parent.fields[node.name.value].type)
            if graphql.is_leaf_type(named):
                total += 0.1
                continue
            assert isinstance(named, graphql.GraphQLObjectType)
            assert node.selection_set is not None
            inner = cost(node.selection_set, named)
            if named.name.endswith("Connection"):
                total += first_of(node) * inner
            else:
                total += 1 + inner
        return total

    root = schema().query_type
    assert root is not None
    return cost(operation.selection_set, root)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LinearSite:
    """A Linear workspace, and how its server should misbehave."""

    teams: dict[str, str] = field(default_factory=dict)  # key -> id
    labels: dict[str, str] = field(default_factory=dict)  # id -> name
    initiatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # by operation name
    complexities: list[float] = field(default_factory=list)
    faults: dict[int, Any] = field(default_factory=dict)
    total_calls: int = 0
    clock: datetime = EPOCH
    numbers: Counter[str] = field(default_factory=Counter)
    serial: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Each list sorted by (updatedAt, id), kept until something changes.
    _sorted: dict[str, tuple[list[str], list[dict[str, Any]]]] = field(default_factory=dict)

    def _changed(self) -> None:
        self._sorted.clear()

    def _tick(self) -> str:
        self._changed()
        self.clock += timedelta(milliseconds=1500)
        return _stamp(self.clock)

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:08d}-0000-4000-8000-000000000000"

    # Building the workspace --------------------------------------------------------------
    def team(self, key: str) -> str:
        return self.teams.setdefault(key, self._id("team"))

    def label(self, name: str) -> str:
        found = next((i for i, n in self.labels.items() if n == name), None)
        if found is None:
            found = self._id("label")
            self.labels[found] = name
        return found

    def initiative(self, name: str, *, status: str = "Active", parent: str | None = None) -> str:
        node_id, stamp = self._id("init"), self._tick()
        self.initiatives[node_id] = {
            "id": node_id, "name": name, "slugId": node_id[5:17], "status": status,
            "url": f"https://linear.app/acme/initiative/{node_id[5:17]}",
            "createdAt": stamp, "updatedAt": stamp, "startedAt": None,
            "completedAt": stamp if status == "Completed" else None,
            "parentInitiative": {"id": parent} if parent else None, "_teams": set(),
        }  # fmt: skip
        return node_id

    def project(
        self, name: str, teams: tuple[str, ...], *, status: str = "started",
        initiatives: tuple[str, ...] = (),
    ) -> str:  # fmt: skip
        node_id, stamp = self._id("proj"), self._tick()
        for key in teams:
            self.team(key)
        self.projects[node_id] = {
            "id": node_id, "name": name, "slugId": node_id[5:17],
            "url": f"https://linear.app/acme/project/{node_id[5:17]}",
            "createdAt": stamp, "updatedAt": stamp, "startedAt": stamp,
            "completedAt": stamp if status == "completed" else None,
            "canceledAt": stamp if status == "canceled" else None,
            "status": {"name": status.title(), "type": status},
            "teams": {"nodes": [{"key": key} for key in teams]},
            "initiativeToProjects": {"nodes": []},
        }  # fmt: skip
        for initiative in initiatives:
            self.add_to_initiative(node_id, initiative)
        return node_id

    def add_to_initiative(self, project: str, initiative: str) -> None:
        stamp = self._tick()
        raw = self.projects[project]
        raw["initiativeToProjects"]["nodes"].append(
            {"createdAt": stamp, "initiative": {"id": initiative}}
        )
        raw["updatedAt"] = stamp
        self.initiatives[initiative]["_teams"].update(t["key"] for t in raw["teams"]["nodes"])

    def issue(
        self, team: str, *, title: str = "", state: str = "unstarted",
        estimate: float | None = None, labels: tuple[str, ...] = (),
        parent: str | None = None, project: str | None = None,
    ) -> str:  # fmt: skip
        self.team(team)
        self.numbers[team] += 1
        node_id, stamp = self._id("issue"), self._tick()
        identifier = f"{team}-{self.numbers[team]}"
        self.issues[node_id] = {
            "id": node_id, "identifier": identifier, "title": title or f"Issue {identifier}",
            "url": f"https://linear.app/acme/issue/{identifier.lower()}",
            "estimate": estimate, "labelIds": [self.label(n) for n in labels],
            "createdAt": stamp, "updatedAt": stamp, "startedAt": None, "completedAt": None,
            "canceledAt": None, "state": {"name": "Todo", "type": "unstarted"},
            "team": {"key": team}, "parent": {"id": parent} if parent else None,
            "project": {"id": project, "name": self.projects[project]["name"]} if project
            else None,
        }  # fmt: skip
        if state != "unstarted":
            self.move(node_id, state)
        return node_id

    def move(self, issue_id: str, state: str) -> None:
        stamp = self._tick()
        raw = self.issues[issue_id]
        names = {"started": "In Progress", "completed": "Done", "canceled": "Canceled"}
        raw["state"] = {"name": names.get(state, state.title()), "type": state}
        if state in ("started", "completed", "canceled") and raw["startedAt"] is None:
            raw["startedAt"] = stamp
        raw["completedAt"] = stamp if state == "completed" else None
        raw["canceledAt"] = stamp if state == "canceled" else None
        raw["updatedAt"] = stamp

    def touch(self, issue_id: str, **fields: Any) -> None:
        self.issues[issue_id].update(fields, updatedAt=self._tick())

    def remove(self, issue_id: str) -> None:
        """Delete an issue for good (what a full sync must notice)."""
        del self.issues[issue_id]
        self._changed()

    def fail(self, call: int, fault: Any) -> None:
        """Answer the ``call``-th request from now with ``fault``: (status, headers), "reset",
        "ratelimited" (Linear's GraphQL error), or a callable run before answering."""
        self.faults[self.total_calls + call] = fault

    # Resolvers ----------------------------------------------------------------------------
    def _page(
        self, rows: list[dict[str, Any]], first: int | None, after: str | None
    ) -> dict[str, Any]:
        if first is not None and first > MAX_FIRST:
            raise graphql.GraphQLError(f"first must be at most {MAX_FIRST}")
        size = first or 50
        start = 0
        if after is not None:
            ids = [row["id"] for row in rows]
            start = ids.index(after) + 1 if after in ids else len(rows)
        chosen = rows[start : start + size]
        public = [{k: v for k, v in row.items() if not k.startswith("_")} for row in chosen]
        return {
            "nodes": public,
            "pageInfo": {
                "hasNextPage": start + size < len(rows),
                "hasPreviousPage": start > 0,
                "startCursor": chosen[0]["id"] if chosen else None,
                "endCursor": chosen[-1]["id"] if chosen else None,
            },
        }

    def _listed(
        self, name: str, rows: Callable[[], list[dict[str, Any]]],
        teams_of: Callable[[dict[str, Any]], set[str]], args: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        if name not in self._sorted:
            ordered = sorted(rows(), key=lambda row: (row["updatedAt"], row["id"]))
            self._sorted[name] = ([row["updatedAt"] for row in ordered], ordered)
        stamps, ordered = self._sorted[name]
        filters = args.get("filter") or {}
        wanted = _keys_in(filters)
        since = (filters.get("updatedAt") or {}).get("gte")
        start = bisect.bisect_left(stamps, _normal(since)) if since is not None else 0
        chosen = [row for row in ordered[start:] if wanted is None or teams_of(row) & wanted]
        sort = args.get("sort") or []
        if any((s.get("updatedAt") or {}).get("order") == "Descending" for s in sort):
            chosen.reverse()
        return self._page(chosen, args.get("first"), args.get("after"))

    def root(self) -> dict[str, Any]:
        def teams(_: Any, **args: Any) -> dict[str, Any]:
            wanted = _keys_in(args.get("filter") or {})
            rows = [{"id": i, "key": k, "name": k.title()} for k, i in sorted(self.teams.items())
                    if wanted is None or k in wanted]  # fmt: skip
            return self._page(rows, args.get("first"), args.get("after"))

        def labels(_: Any, **args: Any) -> dict[str, Any]:
            rows = [{"id": i, "name": n} for i, n in sorted(self.labels.items())]
            return self._page(rows, args.get("first"), args.get("after"))

        return {
            "viewer": {"id": "user-1", "name": "okr-sync"},
            "teams": teams,
            "issueLabels": labels,
            "initiatives": lambda _, **a: self._listed(
                "initiatives",
                lambda: list(self.initiatives.values()),
                lambda row: row["_teams"],
                a,
            ),
            "projects": lambda _, **a: self._listed(
                "projects",
                lambda: list(self.projects.values()),
                lambda row: {t["key"] for t in row["teams"]["nodes"]},
                a,
            ),
            "issues": lambda _, **a: self._listed(
                "issues",
                lambda: list(self.issues.values()),
                lambda row: {row["team"]["key"]},
                a,
            ),
        }


def _keys_in(filters: dict[str, Any]) -> set[str] | None:
    """The team keys a filter names: {key: {in}}, {team: …}, {teams|accessibleTeams: {some}}."""
    for name in ("team", "teams", "accessibleTeams"):
        if name in filters:
            inner = filters[name] or {}
            return _keys_in(inner.get("some", inner))
    if "key" in filters:
        return set((filters["key"] or {}).get("in") or ())
    return None


def _normal(value: str) -> str:
    return _stamp(datetime.fromisoformat(value))


def _error(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def build_app(site: LinearSite) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.method != "POST":
            await JSONResponse(_error("POST a GraphQL document", "BAD_REQUEST"), 400)(
                scope, receive, send
            )
            return
        body = await request.json()
        name = body.get("operationName") or "anonymous"
        fault = await stalled(take_fault(site, name))
        limits = {
            "X-RateLimit-Requests-Limit": "5000",
            "X-RateLimit-Requests-Remaining": "4999",
            "X-RateLimit-Requests-Reset": str(int(time.time() * 1000) + 3_600_000),
        }
        if fault == "reset":
            raise ConnectionResetError("injected reset")
        if fault == "ratelimited":
            limits |= {"X-RateLimit-Requests-Remaining": "0",
                       "X-RateLimit-Requests-Reset": str(int(time.time() * 1000))}  # fmt: skip
            answer = JSONResponse(_error("Rate limit exceeded", "RATELIMITED"), 400, limits)
        elif fault is not None:
            status, headers = fault
            answer = JSONResponse({"error": "injected"}, status, headers)
        elif request.headers.get("authorization") != API_KEY:
            answer = JSONResponse(
                _error("Authentication required, not authenticated", "AUTHENTICATION_ERROR"),
                400,
            )
        else:
            answer = execute(site, body, limits)
        await answer(scope, receive, send)

    return app


def execute(site: LinearSite, body: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
    try:
        document = graphql.parse(body["query"])
    except graphql.GraphQLError as exc:
        return JSONResponse(_error(exc.message, "GRAPHQL_PARSE_FAILED"), 400)
    problems = graphql.validate(schema(), document)
    if problems:
        return JSONResponse(
            {"errors": [{"message": p.message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
                        for p in problems]}, 400,
        )  # fmt: skip
    variables = body.get("variables") or {}
    cost = complexity(document, variables)
    site.complexities.append(cost)
    if cost > MAX_COMPLEXITY:
        return JSONResponse(_error(f"Query too complex: {cost:.0f}", "QUERY_TOO_COMPLEX"), 400)
    result = graphql.execute(
        schema(), document, root_value=site.root(), variable_values=variables,
        operation_name=body.get("operationName"),
    )  # fmt: skip
    assert not isinstance(result, Iterator)
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    return JSONResponse(payload, 200, headers | {"X-Complexity": str(int(cost))})


@contextmanager
def serve(site: LinearSite) -> Iterator[str]:
    """Serve ``site`` on a loopback port until the block ends; yields its GraphQL URL."""
    schema()  # built once, before the first request's clock starts
    with serving(build_app(site), "Linear") as port:
        yield f"http://127.0.0.1:{port}/graphql"


def populate(site: LinearSite, teams: tuple[str, ...], issues: int) -> None:
    """Initiatives with projects (one project shared by two initiatives), issues in projects
    with sub-issues, a spread of states and estimates, and some issues in no project."""
    bet = site.initiative("Grow self-serve")
    ops = site.initiative("Run a tight ship", status="Planned")
    made = 0
    n = 0
    while made < issues:
        for team in teams:
            if made >= issues:
                break
            n += 1
            project = site.project(f"Project {n}", (team,), initiatives=(bet,) if n % 2 else ())
            if n == 1:
                site.add_to_initiative(project, ops)
            for k in range(min(10, issues - made)):
                state = ("unstarted", "started", "completed", "completed", "canceled")[k % 5]
                parent = None
                if k % 4 == 3:
                    parent = next(reversed(site.issues))
                site.issue(
                    team, state=state, estimate=float(k % 3 + 1) if k % 4 else None,
                    labels=("bug",) if k % 3 == 0 else (), parent=parent,
                    project=project if k % 7 else None,
                )  # fmt: skip
                made += 1


def main() -> None:
    """Serve a generated workspace until killed: ``python -m tests.fakes.linear --issues N``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--issues", type=int, required=True)
    parser.add_argument("--teams", nargs="+", default=["ENG", "WEB"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    site = LinearSite()
    populate(site, tuple(args.teams), args.issues)
    schema()
    run_forever(build_app(site), args.port)


if __name__ == "__main__":
    main()
