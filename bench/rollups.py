"""Roll-ups at a million work items, on PostgreSQL (issue 5's benchmark).

    python -m bench.rollups                    # 1M items, 300 teams, 20k links
    python -m bench.rollups --items 100000     # a smaller run (CI runs a smoke size)

Generates a portfolio straight into a fresh database on the test server (COPY, derived state
computed by the generator and checked against the engine's on a sample), then measures through
the app in-process: the portfolio roll-up and a one-team roll-up (p50, p95), the bare SQL
aggregate over the same rows (the floor), and the time to bring derived state up to date after
linking an epic with 10k descendants.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

from bench.common import create_postgres_database, drop_postgres_database, machine
from service.app import create_app
from service.auth.tokens import hash_token
from service.db import Database
from service.derived import state as derived
from service.links import service as links
from service.links.schemas import LinkCreate
from service.migrate import upgrade
from service.models.base import new_id
from service.rollups import cells
from service.settings import Settings
from service.worker.inprocess import InProcessQueue

PERIOD = ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1))
# A period that cuts months: its edge days read the leaves, its whole months the cells.
UNALIGNED = ("mid-Oct to mid-Jan", date(2026, 10, 15), date(2027, 1, 15))
SPAN_START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730
TEAMS = 300
STORIES_PER_EPIC = 49
BIG = (100, 99)  # the relinked epic: 100 stories of 99 sub-tasks each = 10,000 descendants
TOKEN = "bench-admin-token-0123456789abcdef"
RULES = (("debt", "improvement", 10), ("ops", "heartbeat", 5))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Generator:
    """Rows for every table, with the derived columns the engine would compute."""

    def __init__(self, items: int, link_count: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        self.connection_id = new_id()
        self.teams: list[tuple[Any, ...]] = []
        self.krs: list[uuid.UUID] = []
        self.objectives: list[tuple[Any, ...]] = []
        self.key_results: list[tuple[Any, ...]] = []
        self.work_items: list[tuple[Any, ...]] = []
        self.links: list[tuple[Any, ...]] = []
        self.effective_pairs = 0  # (item, KR) pairs an item's effort counts toward
        self.rules = [(new_id(), label, category, priority) for label, category, priority in RULES]
        self.big_epic: uuid.UUID | None = None
        self.sample: list[uuid.UUID] = []  # epics whose subtrees the engine re-derives
        self._teams()
        self._okrs()
        big_size = 1 + BIG[0] * (1 + BIG[1])
        epics = max(1, (items - big_size) // (1 + STORIES_PER_EPIC))
        linked = set(self.rng.sample(range(epics), min(epics, link_count // 2)))
        for index in range(epics):
            self._epic(index, index in linked)
        self._big()

    def release(self) -> None:
        """Keep what the measurements need and drop the generated rows: a server process
        holds none of them, and a heap of a million tuples would have the garbage collector
        pause the timed calls."""
        epics = [row[0] for row in self.work_items if row[4] == "epic" and row[2] != "BIG"]
        self.sample = random.Random(1).sample(epics, min(200, len(epics)))
        self.work_items = []
        gc.collect()
        gc.freeze()  # what is left lives as long as the process, as a server's start-up does

    def _teams(self) -> None:
        root = new_id()
        self.teams.append((root, "org", "Org", None))
        divisions = [new_id() for _ in range(9)]
        for n, team_id in enumerate(divisions):
            self.teams.append((team_id, f"div-{n}", f"Division {n}", root))
        for n in range(TEAMS - 10):
            self.teams.append((new_id(), f"team-{n:03d}", f"Team {n}", divisions[n % 9]))
        self.team_ids = [t[0] for t in self.teams]

    def _okrs(self) -> None:
        self.period_id = new_id()
        for team_id, *_ in self.teams:
            for n in range(2):
                objective_id = new_id()
                self.objectives.append((objective_id, f"Objective {n}", self.period_id, team_id))
                for k in range(3):
                    kr_id = new_id()
                    mode = "linked" if self.rng.random() < 0.2 else "manual"
                    self.key_results.append((kr_id, objective_id, f"KR {k}", mode))
                    self.krs.append(kr_id)

    def _item(
        self, key: str, kind: str, parent: uuid.UUID | None, team: uuid.UUID, leaf: bool,
        labels: list[str] | None = None, category: str | None = None,
        by_item: uuid.UUID | str | None = None, by_rule: uuid.UUID | None = None,
    ) -> uuid.UUID:  # fmt: skip
        """One item; ``by_item="self"`` when the item's own links or labels decide."""
        item_id = new_id()
        created = SPAN_START + timedelta(days=self.rng.uniform(-60, SPAN_DAYS - 5))
        roll = self.rng.random()
        status = "done" if roll < 0.8 else "canceled" if roll < 0.85 else "in_progress"
        started = created + timedelta(days=self.rng.uniform(0, 10))
        done = status != "in_progress"
        resolved = started + timedelta(days=self.rng.uniform(0.1, 30)) if done else None
        estimate = None if self.rng.random() < 0.1 else float(self.rng.choice((1, 2, 3, 5, 8)))
        decider = item_id if by_item == "self" else by_item
        self.work_items.append((
            item_id, self.connection_id, key, key, kind, status, status, team, parent,
            labels or [], ["BENCH"], estimate, created, resolved or created, started, resolved,
            leaf, category, decider, by_rule,
        ))  # fmt: skip
        return item_id

    def _epic(self, index: int, linked: bool) -> None:
        team = self.rng.choice(self.team_ids)
        category, by_item = ("strategic", "self") if linked else (None, None)
        epic = self._item(f"E-{index}", "epic", None, team, False, None, category, by_item)
        pairs = 0  # the KRs the epic and each of its stories count toward
        if linked:
            chosen = self.rng.sample(self.krs, 2)
            weights = [float(self.rng.randint(1, 3)) for _ in chosen]
            for kr, weight in zip(chosen, weights, strict=True):
                share = weight / sum(weights)
                self.links.append((new_id(), kr, epic, weight, share, "manual", None, self.now))
            pairs = len(chosen)
        self.effective_pairs += pairs
        for n in range(STORIES_PER_EPIC):
            label = self.rng.choices(["", "debt", "ops"], weights=(8, 1, 1))[0]
            rule = next((r for r in self.rules if r[1] == label), None)
            if pairs:
                self._item(f"S-{index}-{n}", "issue", epic, team, True, [label] if label
                           else None, "strategic", epic)  # fmt: skip
                self.effective_pairs += pairs
            elif rule is not None:
                self._item(f"S-{index}-{n}", "issue", epic, team, True, [label], rule[2], "self",
                           rule[0])  # fmt: skip
            else:
                self._item(f"S-{index}-{n}", "issue", epic, team, True, [label] if label else None)

    def _big(self) -> None:
        team = self.team_ids[-1]
        self.big_epic = self._item("BIG", "epic", None, team, False)
        for s in range(BIG[0]):
            story = self._item(f"BIG-{s}", "issue", self.big_epic, team, False)
            for t in range(BIG[1]):
                self._item(f"BIG-{s}-{t}", "subtask", story, team, True)


COLUMNS = (
    "id", "connection_id", "external_id", "key", "kind", "status", "status_category", "team_id",
    "parent_id", "labels", "containers", "estimate", "created_at", "updated_at", "started_at",
    "resolved_at", "is_leaf", "category", "decided_by_item_id", "decided_by_rule_id",
)  # fmt: skip


async def load(url: str, data: Generator) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        # COPY sends binary rows; a json value's binary form is its text.
        await conn.set_type_codec(
            "json", schema="pg_catalog", format="binary",
            encoder=lambda v: json.dumps(v).encode(), decoder=json.loads,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "teams", records=[(t[0], t[1], t[2], t[3], data.now, data.now) for t in data.teams],
            columns=("id", "key", "name", "parent_id", "created_at", "updated_at"),
        )  # fmt: skip
        for period_id, (name, start, end) in ((data.period_id, PERIOD), (new_id(), UNALIGNED)):
            await conn.execute(
                "INSERT INTO periods (id, name, start, \"end\", created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, now(), now())", period_id, name, start, end,
            )  # fmt: skip
        await conn.copy_records_to_table(
            "objectives", records=[(*o, "", data.now, data.now) for o in data.objectives],
            columns=("id", "title", "period_id", "team_id", "description", "created_at",
                     "updated_at"),
        )  # fmt: skip
        await conn.copy_records_to_table(
            "key_results",
            records=[(k[0], k[1], k[2], 0.0, 100.0, 0.0, "", k[3], "count", data.now, data.now)
                     for k in data.key_results],
            columns=("id", "objective_id", "title", "start_value", "target_value",
                     "current_value", "unit", "progress_mode", "progress_basis", "created_at",
                     "updated_at"),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO connections (id, provider, name, config, credentials_encrypted,"
            " sync_interval_minutes, created_at, updated_at)"
            " VALUES ($1, 'jira', 'bench', '{}', 'x', 0, now(), now())", data.connection_id,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "classification_rules",
            records=[(r[0], f"label {r[1]}", {"labels": [r[1]]}, r[3], r[2], data.now, data.now)
                     for r in data.rules],
            columns=("id", "name", "match", "priority", "category", "created_at", "updated_at"),
        )  # fmt: skip
        items = [
            (*row[:4], "", "", row[4], "", row[5], row[6], row[7], row[8], row[9], row[10],
             row[11], row[12], row[13], row[14], row[15], data.now, *row[16:])
            for row in data.work_items
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "work_items", records=items,
            columns=("id", "connection_id", "external_id", "key", "url", "title", "kind",
                     "type_name", "status", "status_category", "team_id", "parent_id", "labels",
                     "containers", "estimate", "created_at", "updated_at", "started_at",
                     "resolved_at", "synced_at", "is_leaf", "category", "decided_by_item_id",
                     "decided_by_rule_id"),
        )  # fmt: skip
        await conn.copy_records_to_table(
            "links", records=data.links,
            columns=("id", "key_result_id", "work_item_id", "weight", "share", "origin",
                     "link_rule_id", "created_at"),
        )  # fmt: skip
        # A strategic item's effective links are its link source's links.
        await conn.execute(
            "INSERT INTO key_result_efforts SELECT l.key_result_id,"
            " SUM(CASE WHEN wi.status_category = 'done' THEN l.share ELSE 0 END), SUM(l.share),"
            " SUM(CASE WHEN wi.status_category = 'done' THEN l.share * COALESCE(wi.estimate, 0)"
            " ELSE 0 END), SUM(l.share * COALESCE(wi.estimate, 0)) FROM links l"
            " JOIN work_items wi ON wi.decided_by_item_id = l.work_item_id"
            " WHERE wi.category = 'strategic' AND wi.is_leaf AND wi.deleted_at IS NULL"
            " AND wi.status_category <> 'canceled' GROUP BY 1"
        )
        await conn.execute(
            "INSERT INTO api_tokens (id, name, scope, token_hash, prefix, created_at)"
            " VALUES ($1, 'bench', 'admin', $2, 'bench', now())", new_id(), hash_token(TOKEN),
        )  # fmt: skip
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def compact(url: str) -> tuple[int, float]:
    """Merge the cells the triggers appended while loading, as the compaction job would
    within seconds of a write: (rows merged, seconds)."""
    database = Database.from_url(url)
    started = time.perf_counter()
    async with database.transaction() as session:
        merged = await cells.compact(session)
    took = time.perf_counter() - started
    async with database.engine.connect() as conn:
        # What autovacuum does soon after (the load's compaction left dead rows behind).
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(sa.text("VACUUM ANALYZE rollup_cells, source_cells"))
    await database.engine.dispose()
    return merged, took


async def timed(n: int, call: Any) -> list[float]:
    await call()  # warm
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(url: str, data: Generator, repeats: int) -> dict[str, Any]:
    settings = Settings(database_url=url, environment="development", bootstrap_token=None)
    database = Database.from_url(url)
    app = create_app(settings, database=database, queue=InProcessQueue(eager=True))
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:

            async def get(params: dict[str, str]) -> None:
                response = await client.get("/v1/rollups", params=params)
                response.raise_for_status()

            team = data.teams[1][1]  # a division: a subtree of about 33 teams
            results["portfolio"] = await timed(repeats, lambda: get({"period": PERIOD[0]}))
            results["team"] = await timed(repeats, lambda: get({"period": PERIOD[0], "team": team}))
            results["portfolio_points"] = await timed(
                repeats, lambda: get({"period": PERIOD[0], "basis": "points"})
            )
            results["unaligned"] = await timed(repeats, lambda: get({"period": UNALIGNED[0]}))
            body = (await client.get("/v1/rollups", params={"period": PERIOD[0]})).json()
            results["total"] = body["total"]
            results["shares"] = {k: round(v["share"], 3) for k, v in body["categories"].items()}
        bare = sa.text(
            "SELECT category, count(*), sum(estimate) FROM work_items WHERE is_leaf AND"
            " deleted_at IS NULL AND status_category = 'done' AND resolved_at >= :s AND"
            " resolved_at < :e GROUP BY category"
        )
        start = datetime(2026, 10, 1, tzinfo=UTC)
        end = datetime(2027, 1, 1, tzinfo=UTC)

        async def floor() -> None:
            async with database.engine.connect() as conn:
                (await conn.execute(bare, {"s": start, "e": end})).all()

        results["bare"] = await timed(repeats, floor)
        # The engine agrees with the generator: recomputing a sample of subtrees changes nothing.
        async with database.transaction() as session:
            sample = data.sample
            results["sample_changes"] = await derived.refresh(session, sample)
            await session.rollback()
        assert data.big_epic is not None
        started = time.perf_counter()
        async with database.transaction() as session:
            await links.create(
                session=session,
                data=LinkCreate(key_result_id=data.krs[0], work_item_id=data.big_epic),
            )
        results["relink_s"] = time.perf_counter() - started
        async with database.engine.connect() as conn:
            results["relinked"] = (await conn.execute(sa.text(
                "SELECT count(*) FROM work_items w JOIN links l"
                " ON l.work_item_id = w.decided_by_item_id WHERE w.category = 'strategic'"
                " AND l.key_result_id = :kr AND w.key LIKE 'BIG%'"
            ), {"kr": data.krs[0]})).scalar_one()  # fmt: skip
    await database.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    url, name = create_postgres_database()
    try:
        started = time.perf_counter()
        data = Generator(args.items, args.links)
        asyncio.run(upgrade(Database.from_url(url).engine))
        asyncio.run(load(url, data))
        print(
            f"generated and loaded {len(data.work_items):,} items, {len(data.links):,} links, "
            f"{data.effective_pairs:,} effective links (item and KR pairs) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        data.release()
        merged, took = asyncio.run(compact(url))
        print(f"first compaction of the roll-up cells: {took:.1f} s ({merged:,} rows merged)")
        r = asyncio.run(measure(url, data, args.repeats))
    finally:
        if not args.keep:
            drop_postgres_database(name)
    print(f"machine: {machine()}")
    print(f"portfolio total {r['total']:,.0f} leaves; shares {r['shares']}")
    for label, key in (("portfolio roll-up", "portfolio"), ("portfolio roll-up, points",
                       "portfolio_points"), ("one-team roll-up (division)", "team"),
                       ("portfolio, period cutting months", "unaligned"),
                       ("bare SQL aggregate (floor)", "bare")):  # fmt: skip
        values = r[key]
        print(f"{label:32} p50 {statistics.median(values):7.1f} ms   p95 "
              f"{percentile(values, 0.95):7.1f} ms")  # fmt: skip
    ratio = percentile(r["portfolio"], 0.95) / percentile(r["bare"], 0.95)
    print(f"portfolio p95 / bare p95: {ratio:.2f}x")
    print(f"relink an epic with 10,000 descendants: {r['relink_s']:.2f} s "
          f"({r['relinked']:,} items now count toward the KR)")  # fmt: skip
    print(f"derived state: generator and engine disagree on {r['sample_changes']} sampled items")
    if r["sample_changes"] or r["relinked"] != 1 + BIG[0] * (1 + BIG[1]):
        raise SystemExit("derived state is wrong")


if __name__ == "__main__":
    main()
