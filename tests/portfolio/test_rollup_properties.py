"""Property test: random teams, periods, item forests, links, link rules and classification
rules go in through the API; every roll-up the API returns equals a plain reference
implementation of DESIGN section 3, written here from the text and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.db import Database
from service.models import (
    CheckIn,
    ClassificationRule,
    Connection,
    KeyResult,
    Link,
    LinkRule,
    Objective,
    Period,
    SyncRun,
    Team,
    WorkItem,
)  # fmt: skip
from service.rollups import cells
from service.rollups.schemas import Rollup
from tests import factories
from tests.sync.helpers import connect, sync
from tests.tracker import FakeTracker

PROJECTS = ("A", "B", "C")  # A and B map to teams t0 and t1; C to none
LABELS = ("x", "y", "z")
TYPES = ("epic", "story", "subtask")
STATES = ("open", "doing", "done", "done", "done", "dropped")  # mostly done: most count
OPEN_STATES = ("open", "doing")
BASE = datetime(2026, 9, 1, tzinfo=UTC)
KRS = 3


@dataclass
class Item:
    id: str
    parent: int | None
    type: str
    project: str
    labels: list[str]
    state: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    points: float | None
    offset_hours: int
    deleted: bool


@dataclass
class Scenario:
    team_parents: list[int | None]
    period_start: date
    period_days: int
    items: list[Item]
    links: list[tuple[int, int, float]]  # item index, KR index, weight
    link_rules: list[tuple[dict[str, list[str]], int, float, bool]]  # ..., before the sync
    class_rules: list[tuple[dict[str, list[str]], int, str]]
    bases: list[str]
    include_open: bool = False
    compact: bool = False
    kr_bases: list[str] = field(default_factory=list)


def matches() -> st.SearchStrategy[dict[str, list[str]]]:
    def values(pool: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
        return st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)

    kinds = st.lists(st.sampled_from(("epic", "issue", "subtask")), min_size=1, max_size=2,
                     unique=True)  # fmt: skip
    upper = values(LABELS).map(lambda vs: [v.upper() for v in vs])  # case-insensitive
    return st.fixed_dictionaries(
        {},
        optional={
            "labels": st.one_of(values(LABELS), upper),
            "containers": values(PROJECTS),
            "kinds": kinds,
            "type_names": values(TYPES),
            "teams": values(("t0", "t1")),
        },
    ).filter(bool)


def hours(days: int) -> st.SearchStrategy[int]:
    """Any hour, or often a midnight: period bounds are midnights, so edges get hit."""
    return st.one_of(st.integers(0, 24 * days), st.integers(0, days).map(lambda d: d * 24))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_teams = draw(st.integers(1, 4))
    team_parents = [draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
                    for i in range(n_teams)]  # fmt: skip
    n_items = draw(st.integers(3, 18))
    items = []
    for i in range(n_items):
        created = BASE + timedelta(hours=draw(hours(130)))
        state = draw(st.sampled_from(STATES))
        started = (
            created + timedelta(hours=draw(st.integers(0, 24 * 20)))
            if draw(st.booleans())
            else None
        )
        finished = (
            created + timedelta(hours=draw(hours(60))) if state in ("done", "dropped") else None
        )
        items.append(
            Item(
                id=f"i{i}",
                parent=draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None,
                type=draw(st.sampled_from(TYPES)),
                project=draw(st.sampled_from(PROJECTS)),
                labels=draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=2, unique=True)),
                state=state,
                created=created,
                started=started,
                finished=finished,
                points=draw(st.sampled_from((None, 0.0, 1.0, 2.0, 3.5, 8.0))),
                offset_hours=draw(st.sampled_from((-7, 0, 5))),
                deleted=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    links = draw(
        st.lists(
            st.tuples(st.integers(0, n_items - 1), st.integers(0, KRS - 1),
                      st.sampled_from((1.0, 2.0, 3.0))),
            max_size=5, unique_by=lambda t: (t[0], t[1]),
        )
    )  # fmt: skip
    link_rules = draw(
        st.lists(
            st.tuples(matches(), st.integers(0, KRS - 1), st.sampled_from((1.0, 2.0)),
                      st.booleans()),
            max_size=2,
        )
    )  # fmt: skip
    class_rules = draw(
        st.lists(
            st.tuples(matches(), st.integers(0, 2), st.sampled_from(("improvement", "heartbeat"))),
            min_size=1, max_size=4,
        )
    )  # fmt: skip
    return Scenario(
        team_parents=team_parents,
        period_start=date(2026, 9, 15) + timedelta(days=draw(st.integers(0, 40))),
        period_days=draw(st.integers(7, 100)),
        items=items,
        links=links,
        link_rules=link_rules,
        class_rules=class_rules,
        bases=draw(st.lists(st.sampled_from(("count", "points", "days")), min_size=1,
                            max_size=2, unique=True)),
        include_open=draw(st.booleans()),
        compact=draw(st.booleans()),
        kr_bases=draw(st.lists(st.sampled_from(("count", "points")), min_size=KRS,
                               max_size=KRS)),
    )  # fmt: skip


# The reference: DESIGN section 3, read literally.


def team_of(item: Item) -> str | None:
    return {"A": "t0", "B": "t1"}.get(item.project)


def kind_of(item: Item) -> str:
    return {"epic": "epic", "subtask": "subtask"}.get(item.type, "issue")


def rule_matches(match: dict[str, list[str]], item: Item) -> bool:
    facts = {
        "labels": set(item.labels),
        "containers": {item.project.lower()},
        "kinds": {kind_of(item)},
        "type_names": {item.type},
        "teams": {team_of(item)} if team_of(item) else set(),
    }
    return all({v.lower() for v in values} & facts[name] for name, values in match.items())


class Reference:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.items = s.items
        self.live = [not i.deleted for i in s.items]
        # Each item's links: manual ones, then each link rule's in creation order, a KR once.
        self.links: list[dict[int, float]] = [{} for _ in s.items]
        for item, kr, weight in s.links:
            self.links[item][kr] = weight
        ordered_rules = [r for r in s.link_rules if r[3]] + [r for r in s.link_rules if not r[3]]
        for index, item in enumerate(s.items):
            for match, kr, weight, _ in ordered_rules:
                if kr not in self.links[index] and rule_matches(match, item):
                    self.links[index][kr] = weight
        self.class_rules = sorted(enumerate(s.class_rules), key=lambda r: (-r[1][1], r[0]))

    def path(self, index: int) -> list[int]:
        """The item, then its ancestors, nearest first."""
        found = []
        current: int | None = index
        while current is not None:
            found.append(current)
            current = self.items[current].parent
        return found

    def is_leaf(self, index: int) -> bool:
        return self.live[index] and not any(
            self.live[c] and item.parent == index for c, item in enumerate(self.items)
        )

    def shares(self, index: int) -> dict[int, float]:
        for node in self.path(index):
            if self.live[node] and self.links[node]:
                total = sum(self.links[node].values())
                return {kr: w / total for kr, w in self.links[node].items()}
        return {}

    def category(self, index: int) -> str:
        if self.shares(index):
            return "strategic"
        for _, (match, _, category) in self.class_rules:
            if any(self.live[n] and rule_matches(match, self.items[n]) for n in self.path(index)):
                return category
        return "heartbeat"

    def subtree(self, team: int) -> set[str]:
        found = {team}
        grew = True
        while grew:
            more = {i for i, p in enumerate(self.s.team_parents) if p in found} - found
            found |= more
            grew = bool(more)
        return {f"t{i}" for i in found}

    def effort(
        self, item: Item, basis: str, start: datetime, end: datetime, include_open: bool
    ) -> float | None:
        """The leaf's effort, or None when it does not count."""
        if basis == "days":
            began = item.started or item.created
            ended = min(item.finished or end, end)
            overlap = (ended - max(began, start)).total_seconds() / 86400
            return overlap if overlap > 0 else None
        done = item.state == "done" and start <= item.finished < end  # type: ignore[operator]
        still_open = include_open and item.state in OPEN_STATES and item.created < end
        if not (done or still_open):
            return None
        return 1.0 if basis == "count" else (item.points or 0.0)

    @property
    def period_end(self) -> date:
        return self.s.period_start + timedelta(days=self.s.period_days)

    def rollup(
        self,
        basis: str,
        team: int | None,
        include_open: bool,
        window: tuple[date, date] | None = None,
    ) -> dict[str, Any]:
        """The roll-up of the period, or of ``window`` within it (a trend's point)."""
        first, last = window or (self.s.period_start, self.period_end)
        start, end = (datetime.combine(day, time(), UTC) for day in (first, last))
        teams = self.subtree(team) if team is not None else None
        effort = dict.fromkeys(("strategic", "improvement", "heartbeat"), 0.0)
        counted = dict.fromkeys(effort, 0)
        krs = [0.0] * KRS
        unestimated = 0
        for index, item in enumerate(self.items):
            if not self.is_leaf(index) or (teams is not None and team_of(item) not in teams):
                continue
            value = self.effort(item, basis, start, end, include_open)
            if value is None:
                continue
            category = self.category(index)
            effort[category] += value
            counted[category] += 1
            unestimated += basis == "points" and item.points is None
            for kr, share in self.shares(index).items():
                krs[kr] += value * share
        return {"effort": effort, "items": counted, "unestimated": unestimated, "krs": krs}

    def progress(self, kr: int, basis: str) -> float:
        done = total = 0.0
        for index, item in enumerate(self.items):
            share = self.shares(index).get(kr)
            if not self.is_leaf(index) or share is None or item.state == "dropped":
                continue
            value = share * (1.0 if basis == "count" else (item.points or 0.0))
            total += value
            done += value if item.state == "done" else 0.0
        return done / total if total > 0 else 0.0


# Driving the API.


async def wipe(database: Database) -> None:
    async with database.sessionmaker() as session:
        for model in (Link, LinkRule, ClassificationRule, WorkItem, SyncRun,
                      Connection, CheckIn, KeyResult, Objective, Period):  # fmt: skip
            await session.exec(sa.delete(model))  # type: ignore[call-overload]
        for _ in range(4):  # children before parents
            await session.exec(
                sa.delete(Team).where(~Team.id.in_(sa.select(Team.parent_id).where(  # type: ignore[attr-defined]
                    Team.parent_id.is_not(None)))))  # type: ignore[union-attr]  # fmt: skip
        await session.commit()


def stamp(moment: datetime, offset_hours: int) -> str:
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


async def load(admin: httpx.AsyncClient, tracker: FakeTracker, s: Scenario) -> list[str]:
    for i, parent in enumerate(s.team_parents):
        await factories.team(admin, f"t{i}", parent=None if parent is None else f"t{parent}")
    end = s.period_start + timedelta(days=s.period_days)
    await factories.period(admin, "P", s.period_start.isoformat(), end.isoformat())
    objective = await factories.objective(admin, "P")
    krs = [
        (await factories.key_result(admin, objective["id"], progress_mode="linked",
                                    progress_basis=basis))["id"]
        for basis in s.kr_bases
    ]  # fmt: skip

    async def link_rule(match: dict[str, list[str]], kr: int, weight: float) -> None:
        body = {"match": match, "key_result_id": krs[kr], "weight": weight}
        await factories.created(admin.post("/v1/link-rules", json=body))

    for match, kr, weight, before in s.link_rules:
        if before:
            await link_rule(match, kr, weight)
    tracker.items.clear()
    for item in s.items:
        fields: dict[str, Any] = {
            "key": f"X-{item.id}", "type": item.type, "project": item.project,
            "labels": item.labels, "state": item.state,
            "created": stamp(item.created, item.offset_hours),
        }  # fmt: skip
        if item.parent is not None:
            fields["parent"] = s.items[item.parent].id
        if item.started:
            fields["started"] = stamp(item.started, item.offset_hours)
        if item.finished:
            fields["finished"] = stamp(item.finished, item.offset_hours)
        if item.points is not None:
            fields["points"] = item.points
        tracker.add(item.id, **fields)
    connection = await connect(admin, team_map={"A": "t0", "B": "t1"})
    assert (await sync(admin, connection, "full"))["status"] == "succeeded"
    for item in s.items:
        if item.deleted:
            tracker.delete(item.id)
    assert (await sync(admin, connection, "full"))["status"] == "succeeded"
    for match, kr, weight, before in s.link_rules:
        if not before:
            await link_rule(match, kr, weight)
    for item, kr, weight in s.links:
        body = {"key_result_id": krs[kr], "work_item_key": f"X-{s.items[item].id}",
                "weight": weight}  # fmt: skip
        response = await admin.post("/v1/links", json=body)
        assert response.status_code == 201, response.text
    for match, priority, category in s.class_rules:
        body = {"match": match, "priority": priority, "category": category}
        await factories.created(admin.post("/v1/classification-rules", json=body))
    return krs


def query(s: Scenario, basis: str, team: int | None) -> dict[str, str]:
    """The query of a roll-up or trend of the scenario's period on ``basis``, for ``team``."""
    params = {"period": "P", "basis": basis}
    if s.include_open:
        params["include_open"] = "true"
    if team is not None:
        params["team"] = f"t{team}"
    return params


@settings(
    max_examples=50, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(s=scenarios())
async def test_every_rollup_equals_the_reference(
    admin: httpx.AsyncClient, tracker: FakeTracker, database: Database, s: Scenario
) -> None:
    await wipe(database)
    krs = await load(admin, tracker, s)
    async with database.sessionmaker() as session:
        if s.compact:  # roll-ups read the same sums from appended rows as from merged ones
            await cells.compact(session)
        assert await cells.drift(session) == []
        await session.commit()
    reference = Reference(s)
    for basis in s.bases:
        for team in [None, *range(len(s.team_parents))]:
            response = await admin.get("/v1/rollups", params=query(s, basis, team))
            assert response.status_code == 200, response.text
            got, want = response.json(), reference.rollup(basis, team, s.include_open)
            Rollup.model_validate(got)
            for name, category in got["categories"].items():
                assert category["effort"] == pytest.approx(want["effort"][name], abs=1e-6), name
                assert category["items"] == want["items"][name], name
            if basis == "points":
                assert got["unestimated_items"] == want["unestimated"]
            kr_effort = {
                kr["id"]: kr["effort"] for o in got["objectives"] for kr in o["key_results"]
            }
            for index, kr_id in enumerate(krs):
                assert kr_effort.get(kr_id, 0.0) == pytest.approx(want["krs"][index], abs=1e-6)
    for basis in s.bases:
        for team in [None, *range(len(s.team_parents))]:
            await check_trends(admin, reference, s, basis, team)
    for index, kr_id in enumerate(krs):
        body = (await admin.get(f"/v1/key-results/{kr_id}")).json()
        expected = reference.progress(index, s.kr_bases[index])
        assert body["progress"] == pytest.approx(expected, abs=1e-9)


async def check_trends(
    admin: httpx.AsyncClient, reference: Reference, s: Scenario, basis: str, team: int | None
) -> None:
    """Each week and month of the period equals the reference's roll-up of that window, and
    the windows are calendar weeks (Monday first) and months cut to the period."""
    for interval in ("week", "month"):
        params = query(s, basis, team) | {"interval": interval}
        response = await admin.get("/v1/rollups/trend", params=params)
        assert response.status_code == 200, response.text
        points = response.json()["points"]
        windows = [(date.fromisoformat(p["start"]), date.fromisoformat(p["end"])) for p in points]
        assert windows[0][0] == s.period_start
        assert windows[-1][1] == reference.period_end
        for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
            assert end == start
            assert (start.weekday() == 0) if interval == "week" else (start.day == 1)
        for point, window in zip(points, windows, strict=True):
            want = reference.rollup(basis, team, s.include_open, window)
            for name, category in point["categories"].items():
                assert category["effort"] == pytest.approx(want["effort"][name], abs=1e-6), (
                    interval, window, name,
                )  # fmt: skip
                assert category["items"] == want["items"][name], (interval, window, name)
            if basis == "points":
                assert point["unestimated_items"] == want["unestimated"], (interval, window)
