"""Benchmark: a mixed read/write API load on PostgreSQL, from a second process on loopback.

    python -m bench.load                          # 100k items, 60 s, 16 connections
    python -m bench.load --rate 150               # the same offered at 150 requests/s
    python -m bench.load --items 20000 --seconds 10 --costs 10 --sweep 24   # CI's smoke run
    python -m bench.load --each-kind              # then each kind alone: its CPU a request
    python -m bench.load --kinds rollup,work_items,trend,hook   # the mix without link changes
    python -m bench.load --sweep 16,20,24,28,32   # then the mix at each of these client counts

A portfolio (bench.rollups' generator: 300 teams, their OKRs, epics, stories and sub-tasks)
is loaded into a fresh database on the test server; ``--replicas`` processes of
``okr-sync serve`` (two: one per core, as the API scales out) run on it with their embedded
defaults otherwise (no Redis: inbound webhooks are applied in the server processes).
A second process (``python -m bench.load generate``) keeps ``--concurrency`` requests in
flight for ``--seconds``, spread over the replicas, each drawn at random (seeded) from this
mix, and times each answer:

    35%  GET /v1/rollups            the portfolio, or a division, for the period
    25%  GET /v1/work-items         a team's items, 50 a page
    10%  GET /v1/rollups/trend      a team's weeks
    15%  POST/DELETE /v1/links      link an epic to a KR, or remove a link made before
    15%  POST /hooks/{id}           a signed GitHub issues event, a new delivery each

Any answer other than the expected status counts as an error, and so does a failed request.
That is a closed loop, which finds the most the server answers and its latencies then. With
``--rate``, an open loop instead: requests leave on a fixed schedule, as users' would, and
latencies count from each one's planned departure, so they show what a given load waits.
Target (issue 8): 300 requests per second with p99 under 250 ms on 2 cores, and no errors.
How many clients keep the server busiest is not known in advance: too few and it waits
between requests, too many and each waits in line; ``--sweep`` runs the mix at several
client counts and reports the most requests/s any of them served within the p99 target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import sqlalchemy as sa

from bench.common import (
    ROOT,
    SPEED_UNIT,
    SpeedProbe,
    create_postgres_database,
    drop_postgres_database,
    machine,
)
from bench.rollups import PERIOD, TOKEN, Generator, compact, load
from bench.webhooks import EXAMPLE, Served, percentile, serving
from service.db import Database, create_engine
from service.migrate import upgrade
from service.worker.jobs import SPACING

SECRET = "bench-load-webhook-secret-0123456789"
MIX = (("rollup", 35), ("work_items", 25), ("trend", 10), ("link", 15), ("hook", 15))
EXPECTED = {"rollup": {200}, "work_items": {200}, "trend": {200}, "link": {201, 204},
            "hook": {202}}  # fmt: skip


# -- the load generator (a process of its own) -----------------------------------------------


class Mix:
    """What one simulated client sends next."""

    def __init__(
        self, plan: dict[str, Any], seed: int, clients: int, kinds: list[str] | None = None
    ) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        # Each client links its own epics, so no two make the same link (a 409).
        self.epics = plan["epics"][seed::clients]
        self.linked: set[tuple[str, str]] = {(kr, epic) for kr, epic in plan.get("taken", ())}
        self.kinds = [
            kind for kind, weight in MIX if kinds is None or kind in kinds for _ in range(weight)
        ]
        self.links: list[tuple[str, tuple[str, str]]] = []  # made, not removed yet
        self.template = json.loads((EXAMPLE / "issues.opened.json").read_text())

    def next(self) -> tuple[str, str, str, dict[str, Any]]:
        """(kind, method, path, httpx keyword arguments)."""
        kind = self.rng.choice(self.kinds)
        period = PERIOD[0]
        if kind == "rollup":
            team = self.rng.choice([None, *self.plan["divisions"]])
            params = {"period": period} | ({"team": team} if team else {})
            return kind, "GET", "/v1/rollups", {"params": params}
        if kind == "trend":
            team = self.rng.choice(self.plan["teams"])
            params = {"period": period, "team": team, "interval": "week"}
            return kind, "GET", "/v1/rollups/trend", {"params": params}
        if kind == "work_items":
            team = self.rng.choice(self.plan["teams"])
            return kind, "GET", "/v1/work-items", {"params": {"team": team, "limit": 50}}
        if kind == "link":
            if self.links and (len(self.links) > 5 or self.rng.random() < 0.5):
                link_id, pair = self.links.pop(0)
                self.linked.discard(pair)
                return kind, "DELETE", f"/v1/links/{link_id}", {}
            pair = (self.rng.choice(self.plan["krs"]), self.rng.choice(self.epics))
            while pair in self.linked:
                pair = (self.rng.choice(self.plan["krs"]), self.rng.choice(self.epics))
            self.linked.add(pair)
            body = {"key_result_id": pair[0], "work_item_id": pair[1]}
            return kind, "POST", "/v1/links", {"json": body}
        number = self.rng.randrange(10**9)
        self.template["issue"]["id"] = number
        self.template["issue"]["number"] = number
        body = json.dumps(self.template).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                   "X-Hub-Signature-256": f"sha256={signature}",
                   "Content-Type": "application/json"}  # fmt: skip
        return (
            kind,
            "POST",
            f"/hooks/{self.plan['connection']}",
            {"content": body, "headers": headers},
        )


# The latency the target allows at the 99th percentile (``--sweep``).
P99_TARGET_MS = 250.0

# At most this many requests in flight in an open loop: past it the server is far behind
# what is offered, and each request more is counted as refused instead of sent.
OPEN_LOOP_CAP = 256


async def generate(
    bases: list[str],
    seconds: float,
    concurrency: int,
    plan: dict[str, Any],
    rate: float | None = None,
    warmup: float = 0.0,
) -> Any:
    """``concurrency`` clients, each with its own Mix, for ``warmup`` and then ``seconds``,
    whose requests alone are timed (errors count throughout). With no ``rate``, a
    closed loop: each client sends its next request when its last is answered, so the
    server is always busy and the figures are its most. With ``rate``, an open loop:
    requests leave at ``rate`` a second, on a schedule kept whatever the answers, taken by
    the clients in turn, and each latency counts from the request's planned departure (a
    generator that falls behind does not hide the wait)."""
    # aiohttp, not httpx: the generator shares the 2 cores with what it measures, and httpx
    # spent about 1 ms of CPU a request (0.17 of a core at 170 requests/s) to aiohttp's 60 us.
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    errors: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limit = concurrency if rate is None else OPEN_LOOP_CAP
    async with contextlib.AsyncExitStack() as stack:
        # The clients are spread over the replicas, as a load balancer would.
        replicas = [
            await stack.enter_async_context(
                aiohttp.ClientSession(
                    base_url=base, headers=headers, timeout=aiohttp.ClientTimeout(total=30),
                    connector=aiohttp.TCPConnector(limit=limit),
                )
            )
            for base in bases
        ]  # fmt: skip
        mixes = [Mix(plan, seed, concurrency, plan.get("kinds")) for seed in range(concurrency)]
        measured_from = time.perf_counter() + warmup
        deadline = measured_from + seconds
        sent = 0

        async def send(seed: int, started: float) -> None:
            nonlocal sent
            c, mix = replicas[seed % len(replicas)], mixes[seed]
            kind, method, path, kwargs = mix.next()
            arguments = {("data" if k == "content" else k): v for k, v in kwargs.items()}
            sent += 1
            try:
                async with c.request(method, path, **arguments) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[f"{kind}: {type(exc).__name__}"] += 1
                return
            if started >= measured_from:
                latencies[kind].append((time.perf_counter() - started) * 1000)
            if response.status not in EXPECTED[kind]:
                errors[f"{kind} {method}: {response.status}"] += 1
            elif method == "POST" and kind == "link":
                made = kwargs["json"]
                pair = (made["key_result_id"], made["work_item_id"])
                mix.links.append((json.loads(body)["id"], pair))

        async def client(seed: int) -> None:
            while time.perf_counter() < deadline:
                await send(seed, time.perf_counter())

        async def schedule(rate: float) -> None:
            in_flight: set[asyncio.Task[None]] = set()
            first, n = time.perf_counter(), 0
            while (departure := first + n / rate) < deadline:
                if (wait := departure - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                if len(in_flight) >= OPEN_LOOP_CAP:
                    errors["refused: too many in flight"] += 1
                else:
                    task = asyncio.create_task(send(n % concurrency, departure))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                n += 1
            await asyncio.gather(*in_flight)

        began, cpu = time.perf_counter(), time.process_time()
        if rate is None:
            await asyncio.gather(*(client(n) for n in range(concurrency)))
        else:
            await schedule(rate)
        ended, cpu = time.perf_counter(), time.process_time() - cpu
        took = ended - max(began, measured_from)
    everything = [v for values in latencies.values() for v in values]

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"requests": 0}
        return {"requests": len(values), "p50_ms": statistics.median(values),
                "p95_ms": percentile(values, 0.95), "p99_ms": percentile(values, 0.99)}  # fmt: skip

    return {
        "seconds": took, "per_second": len(everything) / took, "errors": errors,
        "generator_cores": cpu / (ended - began), "sent": sent,
        "all": summary(everything), "kinds": {k: summary(v) for k, v in latencies.items()},
    }  # fmt: skip


# -- what each kind of request costs -------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """User and system CPU time of one process so far (Linux); None once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it was read
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def process_waits(pid: int) -> int | None:
    """How many times a process's main thread (a replica's event loop; PostgreSQL's processes
    have no other) has given up its core to wait (Linux: voluntary context switches, each a
    wake-up later); None once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return None


T = TypeVar("T")


def _of_live(read: Callable[[int], T | None], pids: Iterable[int]) -> dict[int, T]:
    """``read`` of each of these processes, those that ended left out."""
    found = {pid: read(pid) for pid in pids}
    return {pid: value for pid, value in found.items() if value is not None}


def waits_by_pid(pids: Iterable[int]) -> dict[int, int]:
    """Each of these processes' waits so far, those that ended left out."""
    return _of_live(process_waits, pids)


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """Each of these processes' CPU time so far, those that ended left out."""
    return _of_live(process_cpu, pids)


def _grown(before: Mapping[int, float], now: Mapping[int, float]) -> float:
    """How much these processes' counters grew since ``before``; a process started since
    counts from zero."""
    return sum(value - before.get(pid, 0) for pid, value in now.items())


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far, those that ended left out."""
    return sum(cpu_by_pid(pids).values())


async def _backends(url: str) -> list[int]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        pids = [pid for (pid,) in rows]
    await engine.dispose()
    return pids


def postgres_pids() -> list[int]:
    """Every PostgreSQL process now (Linux): the backends and the server's own (WAL writer,
    checkpointer)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().startswith("postgres"):
                pids.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return pids


def idle_cpu(served: Served) -> float:
    """What the replicas spend idle (their timers), per second: taken off what requests cost."""
    started, idle = time.perf_counter(), cpu_seconds(served.pids)
    time.sleep(5)
    return (cpu_seconds(served.pids) - idle) / (time.perf_counter() - started)


class Spent:
    """The CPU the replicas (their idle timers taken off) and PostgreSQL spend from its
    making on: the ``database`` backends, or with None every PostgreSQL process, those
    started meanwhile included. A backend that ends meanwhile is left out."""

    def __init__(self, served: Served, idle_rate: float, database: list[int] | None = None) -> None:
        self.pids, self.database, self.idle_rate = served.pids, database, idle_rate
        self.started = time.perf_counter()
        database = self._database_pids()
        self.server, self.db = cpu_seconds(self.pids), cpu_by_pid(database)
        self.server_waits = sum(waits_by_pid(self.pids).values())
        self.db_waits = waits_by_pid(database)

    def _database_pids(self) -> list[int]:
        return self.database if self.database is not None else postgres_pids()

    def per_request(self, requests: int) -> dict[str, float]:
        server = cpu_seconds(self.pids) - self.server
        server -= self.idle_rate * (time.perf_counter() - self.started)
        pids = self._database_pids()  # once: the CPU and the waits of the same processes
        database = _grown(self.db, cpu_by_pid(pids))
        server_waits = sum(waits_by_pid(self.pids).values()) - self.server_waits
        database_waits = _grown(self.db_waits, waits_by_pid(pids))
        return {
            "server_ms": 1000 * max(0.0, server) / requests,
            "database_ms": 1000 * database / requests,
            "server_waits": server_waits / requests,
            "database_waits": database_waits / requests,
        }


def costs(served: Served, url: str, plan: dict[str, Any], requests: int) -> dict[str, Any]:
    """CPU per request of each kind, sent one at a time: the API processes' and the
    database's, for ``requests`` of each kind (writes include the scans they ask for, which
    run within seconds). Run before the load, on the first client's epics, and leaves no
    link of its own behind."""
    found = {}
    idle_rate = idle_cpu(served)
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        for kind, _ in MIX:
            # A mix of this kind alone: drawing the others would move their state too (a
            # link drawn for removal and not sent stayed, a 409 for the load's first client).
            mix = Mix(plan, 0, int(plan["clients"]), [kind])
            spent = Spent(served, idle_rate, asyncio.run(_backends(url)))
            for sent in range(requests):
                _, method, path, kwargs = mix.next()
                response = client.request(method, served.bases[sent % len(served.bases)] + path,
                                          **kwargs)  # fmt: skip
                if method == "POST" and kind == "link" and response.status_code == 201:
                    made = kwargs["json"]
                    mix.links.append((response.json()["id"], (made["key_result_id"],
                                                              made["work_item_id"])))  # fmt: skip
            if kind in ("link", "hook"):
                time.sleep(SPACING["scan_events"] + 1)  # the scans the writes asked for
            found[kind] = spent.per_request(requests)
            for link_id, _ in mix.links:
                client.delete(f"{served.bases[0]}/v1/links/{link_id}").raise_for_status()
    return found


# What any request costs before its own work: no database, a refused token, one row.
FLOORS = (
    ("GET /healthz (no database)", "/healthz", False),
    ("GET /v1/periods?limit=1, no token (a 401)", "/v1/periods?limit=1", False),
    ("GET /v1/periods?limit=1 (one row)", "/v1/periods?limit=1", True),
)


def floors(served: Served, url: str, requests: int) -> dict[str, dict[str, float]]:
    """CPU per request of the FLOORS, sent one at a time, as ``costs`` reads it."""
    found = {}
    idle_rate = idle_cpu(served)
    database = asyncio.run(_backends(url))
    with httpx.Client(timeout=60) as client:
        for label, path, token in FLOORS:
            headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
            spent = Spent(served, idle_rate, database)
            for sent in range(requests):
                client.get(served.bases[sent % len(served.bases)] + path, headers=headers)
            found[label] = spent.per_request(requests)
    return found


# -- the run ----------------------------------------------------------------------------------


def run(
    items: int,
    seconds: float,
    concurrency: int,
    replicas: int,
    cost_requests: int,
    kinds: list[str] | None = None,
    rate: float | None = None,
    warmup: float = 0.0,
) -> dict[str, Any]:
    url, name = create_postgres_database()
    try:
        data = Generator(items, max(200, items // 50))
        epics = [str(row[0]) for row in data.work_items if row[4] == "epic" and row[2] != "BIG"]
        if len(epics) < concurrency and (kinds is None or "link" in kinds):
            # Each client links epics of its own (so that no two make the same link); said
            # before the portfolio is loaded for nothing.
            raise SystemExit(
                f"{items:,} items hold {len(epics)} epics, fewer than the {concurrency} clients "
                "that link them: give --items 20000 or more"
            )
        asyncio.run(upgrade(Database.from_url(url).engine))
        asyncio.run(load(url, data))
        plan_teams = [t[1] for t in data.teams if t[1].startswith("team-")]
        divisions = [t[1] for t in data.teams if t[1].startswith("div-")]
        # Links made already: making one again would be a 409.
        taken = [[str(link[1]), str(link[2])] for link in data.links]
        krs = [str(kr) for kr in data.krs]
        data.release()
        asyncio.run(compact(url))
        with tempfile.TemporaryDirectory() as data_dir:
            log = Path(data_dir) / "server.log"
            try:
                with (
                    log.open("w") as stderr,
                    serving(
                        url, data_dir, redis=False, secret=SECRET, stderr=stderr,
                        replicas=replicas,
                    ) as served,
                ):  # fmt: skip
                    plan = {"teams": plan_teams, "divisions": divisions, "epics": epics,
                            "krs": krs, "connection": served.connection_id,
                            "taken": taken, "clients": concurrency,
                            "kinds": kinds}  # fmt: skip
                    spent = costs(served, url, plan, cost_requests) if cost_requests else None
                    # Many requests: each costs about a millisecond, and /proc counts in 10s.
                    floor = floors(served, url, 10 * cost_requests) if cost_requests else None
                    plan_file = Path(data_dir) / "plan.json"  # too long for a command line
                    plan_file.write_text(json.dumps(plan))
                    under_load = Spent(served, idle_rate=0.0)  # every PostgreSQL process
                    with SpeedProbe() as speed:
                        generator = subprocess.run(
                            [sys.executable, "-m", "bench.load", "generate",
                             ",".join(served.bases), str(seconds), str(concurrency),
                             str(plan_file), str(rate or 0), str(warmup)],
                            cwd=ROOT, capture_output=True, text=True,
                        )  # fmt: skip
                    if generator.returncode:
                        raise SystemExit(f"the load generator failed:\n{generator.stderr}")
                    result: dict[str, Any] = json.loads(generator.stdout)
                    # Over the whole run, warm-up included.
                    result["under_load"] = under_load.per_request(result["sent"])
                    result["speed"], result["spread"] = speed.summary(), speed.spread()
                    if spent is not None:
                        result["costs"], result["floors"] = spent, floor
                    return result
            finally:
                # What the server logged at ERROR, to show with any errors counted.
                errors = [line for line in log.read_text().splitlines() if '"ERROR"' in line]
                for line in errors[:3]:
                    print(line, file=sys.stderr)
    finally:
        drop_postgres_database(name)


def main() -> None:
    if sys.argv[1:2] == ["generate"]:
        base, seconds, concurrency, plan, rate, warmup = sys.argv[2:8]
        plan_data = json.loads(Path(plan).read_text())
        result = asyncio.run(
            generate(base.split(","), float(seconds), int(concurrency), plan_data,
                     float(rate) or None, float(warmup))
        )  # fmt: skip
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--replicas", type=int, default=2, help="okr-sync serve processes (one per core)"
    )
    parser.add_argument(
        "--costs", type=int, default=40, metavar="N",
        help="first send N requests of each kind one at a time, for their CPU cost, and 10 N "
        "of each floor request (0: don't)",
    )  # fmt: skip
    parser.add_argument(
        "--kinds", metavar="KIND,...",
        help="send only these kinds under load, in their shares of the mix (what one kind "
        "costs among its own kind)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, metavar="R",
        help="an open loop: send R requests/s on a fixed schedule, whatever the answers, "
        "the --concurrency clients taking them in turn (default: a closed loop, each client "
        "sending its next request when its last is answered)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=5.0, metavar="S",
        help="run the load S seconds before timing it: fresh connections and PostgreSQL "
        "backends plan their first statements slowly (errors count throughout)",
    )  # fmt: skip
    parser.add_argument(
        "--each-kind", action="store_true",
        help="then run each kind alone as well, on a fresh database each, and print what a "
        "request of each costs under its own load and its part of the mix's CPU",
    )  # fmt: skip
    parser.add_argument(
        "--sweep", metavar="N,...",
        help="then run the mix in a closed loop with each of these numbers of clients, on a "
        "fresh database each, and print the most requests/s served with p99 under "
        f"{P99_TARGET_MS:g} ms",
    )  # fmt: skip
    args = parser.parse_args()
    kinds = args.kinds.split(",") if args.kinds else None
    try:
        sweep = [int(n) for n in args.sweep.split(",")] if args.sweep else []
    except ValueError:
        parser.error("--sweep: give client counts, such as 16,20,24")
    if sweep and (args.rate or kinds):
        parser.error("--sweep runs the whole mix in a closed loop: leave out --rate and --kinds")
    if kinds and not set(kinds) <= {kind for kind, _ in MIX}:
        parser.error(f"--kinds: choose from {', '.join(kind for kind, _ in MIX)}")
    if kinds and args.each_kind:
        parser.error("--each-kind runs every kind: leave out --kinds")
    r = run(args.items, args.seconds, args.concurrency, args.replicas, args.costs, kinds,
            args.rate, args.warmup)  # fmt: skip
    loop = (
        f"an open loop at {args.rate:g} requests/s offered"
        if args.rate
        else f"{args.concurrency} connections"
    )
    print(f"machine: {machine()}; {args.items:,} items, {args.replicas} replicas, {loop}, "
          f"{r['seconds']:.0f} s timed after {args.warmup:g} s")  # fmt: skip
    print("| requests | per second | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for kind, s in [("all", r["all"]), *r["kinds"].items()]:
        if not s["requests"]:
            continue
        rate = s["requests"] / r["seconds"]
        print(f"| {kind} | {rate:.0f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | "
              f"{s['p99_ms']:.1f} |")  # fmt: skip
    print(f"load generator: {r['generator_cores']:.2f} of a core")
    print(f"machine speed during the load: {r['speed']}")
    spent = r["under_load"]
    print(f"CPU a request under the load: {spent['server_ms']:.2f} ms the API's, "
          f"{spent['database_ms']:.2f} ms PostgreSQL's")  # fmt: skip
    print(f"waits a request under the load (each a wake-up): {spent['server_waits']:.1f} the "
          f"API's, {spent['database_waits']:.1f} PostgreSQL's")  # fmt: skip
    if "costs" in r:
        print("\nCPU per request, sent one at a time:\n")
        print("| requests | share of the mix | API ms | PostgreSQL ms | total ms |")
        print("|---|---:|---:|---:|---:|")
        weighted = 0.0
        for kind, weight in MIX:
            c = r["costs"][kind]
            total = c["server_ms"] + c["database_ms"]
            weighted += weight / 100 * total
            print(f"| {kind} | {weight}% | {c['server_ms']:.1f} | {c['database_ms']:.1f} | "
                  f"{total:.1f} |")  # fmt: skip
        print(f"\nweighted by the mix: {weighted:.1f} ms of CPU a request, so at most "
              f"{2000 / weighted:.0f} requests/s on 2 busy cores, generator aside")  # fmt: skip
        print("\nWhat any request costs before its own work, one at a time:\n")
        print("| request | API ms | PostgreSQL ms |")
        print("|---|---:|---:|")
        for label, c in r["floors"].items():
            print(f"| {label} | {c['server_ms']:.1f} | {c['database_ms']:.1f} |")
    print(f"errors: {r['errors'] or 'none'}")
    if r["errors"]:
        raise SystemExit("the load met errors")
    if args.each_kind:
        each_kind(args)
    if sweep:
        sweep_clients(args, sweep)


def best_within_target(rows: dict[int, dict[str, Any]]) -> tuple[int, float] | None:
    """(clients, requests/s) of the run that served the most with p99 within the target and
    no errors, of the closed-loop runs by client count; None if none did."""
    fits = [
        (r["all"]["requests"] / r["seconds"], clients)
        for clients, r in rows.items()
        if r["all"]["p99_ms"] < P99_TARGET_MS and not r["errors"]
    ]
    if not fits:
        return None
    rate, clients = max(fits)
    return clients, rate


def sweep_clients(args: argparse.Namespace, counts: list[int]) -> None:
    """The mix in a closed loop with each number of clients: where the server serves most."""
    rows = {
        clients: run(args.items, args.seconds, clients, args.replicas, 0, None, None,
                     args.warmup)
        for clients in counts
    }  # fmt: skip
    print("\nThe mix by number of clients (a fresh database each):\n")
    print("| clients | requests/s | p50 ms | p95 ms | p99 ms | API + PostgreSQL ms a request "
          "| API + PostgreSQL waits a request "
          f"| machine speed: CPU s for {SPEED_UNIT // 1_000_000} million additions |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for clients, r in rows.items():
        s, spent = r["all"], r["under_load"]
        print(f"| {clients} | {s['requests'] / r['seconds']:.0f} | {s['p50_ms']:.1f} | "
              f"{s['p95_ms']:.1f} | {s['p99_ms']:.1f} | {spent['server_ms']:.2f} + "
              f"{spent['database_ms']:.2f} | {spent['server_waits']:.1f} + "
              f"{spent['database_waits']:.1f} | {r['spread']} |")  # fmt: skip
    best = best_within_target(rows)
    if best is None:
        print(f"\nno client count served with p99 under {P99_TARGET_MS:g} ms")
    else:
        print(f"\nmost within p99 {P99_TARGET_MS:g} ms: {best[1]:.0f} requests/s, "
              f"with {best[0]} clients")  # fmt: skip
    errors = {clients: r["errors"] for clients, r in rows.items() if r["errors"]}
    print(f"errors: {errors or 'none'}")
    if errors:
        raise SystemExit("the load met errors")


def each_kind(args: argparse.Namespace) -> None:
    """Each kind of the mix alone, for the CPU a request of it costs among its own kind; then
    those costs weighted by the mix, to set beside what the mix itself cost, printed above
    (the difference is what the kinds do to each other: lock waits, batches, cell rows not
    yet compacted)."""
    alone = {
        kind: run(args.items, args.seconds, args.concurrency, args.replicas, 0, [kind],
                  args.rate, args.warmup)
        for kind, _ in MIX
    }  # fmt: skip
    totals = {k: r["under_load"]["server_ms"] + r["under_load"]["database_ms"]
              for k, r in alone.items()}  # fmt: skip
    weighted = sum(weight / 100 * totals[kind] for kind, weight in MIX)
    print("\nEach kind alone (a fresh database each):\n")
    print("| kind | share of the mix | requests/s alone | API ms | PostgreSQL ms | total ms | "
          "of the mix's CPU |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, weight in MIX:
        r, spent = alone[kind], alone[kind]["under_load"]
        print(f"| {kind} | {weight}% | {r['all']['requests'] / r['seconds']:.0f} | "
              f"{spent['server_ms']:.2f} | {spent['database_ms']:.2f} | {totals[kind]:.2f} | "
              f"{weight * totals[kind] / weighted:.0f}% |")  # fmt: skip
    print(f"\nweighted by the mix: {weighted:.2f} ms of CPU a request")
    for kind, _ in MIX:
        print(f"machine speed during {kind} alone: {alone[kind]['speed']}")
    errors = {kind: r["errors"] for kind, r in alone.items() if r["errors"]}
    print(f"errors: {errors or 'none'}")
    if errors:
        raise SystemExit("the load met errors")


if __name__ == "__main__":
    main()
