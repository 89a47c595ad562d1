"""What the benchmarks share: ports, fresh databases, the machine's description."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from service.db import create_engine

POSTGRES_ADMIN = os.environ.get(
    "OKR_SYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


SPEED_UNIT = 10_000_000  # additions: the figure bench/RESULTS.md has quoted since 2026-12-07


def speed_text(seconds: float) -> str:
    return f"{SPEED_UNIT // 1_000_000} million additions in {seconds:.2f} s of CPU"


# At module level, as `python3 -c` runs it and as bench/RESULTS.md's figures were taken:
# each step looks up and stores names in a dict, as a service's code does. On 2026-12-07
# the same loop in a function, on local variables, read 0.64-0.68 s while this read
# 1.65-1.95 s, and bench.load's CPU a request was 2.3 times the last session's, as this was.
_ADDITIONS = compile("total = 0\nfor i in range(n):\n    total += i\n", "<speed>", "exec")


def python_speed(additions: int = SPEED_UNIT, runs: int = 3) -> float:
    """The CPU seconds (of this thread: waiting for a core does not count) that a plain Python
    loop of 10 million additions takes, timed over ``additions`` of them, the best of ``runs``.

    The VMs these benchmarks run on differ in speed from day to day by twice and more, and
    one VM's speed wanders within a session (bench/RESULTS.md): read a result beside it."""
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        exec(_ADDITIONS, {"n": additions})
        best = min(best, time.thread_time() - started)
    return best * SPEED_UNIT / additions


class SpeedProbe:
    """``python_speed`` sampled every ``every`` seconds on a thread of this process while the
    block runs: how fast the machine ran during a measurement, not only before it. Each
    sample is 200,000 additions, about 1% of a core."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(python_speed(200_000, runs=1))

    def __enter__(self) -> SpeedProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "no speed samples"
        return f"{speed_text(statistics.median(self.samples))} ({self._range()})"

    def spread(self) -> str:
        """The samples' median, range and count, in seconds: for a table's cell."""
        if not self.samples:
            return "no samples"
        return f"{statistics.median(self.samples):.2f} ({self._range()})"

    def _range(self) -> str:
        return f"{min(self.samples):.2f}-{max(self.samples):.2f}, {len(self.samples)} samples"


def machine() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}; {speed_text(python_speed())}"
    )


async def _admin(statement: str) -> None:
    engine = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def create_postgres_database() -> tuple[str, str]:
    """A new empty database on the test server: (its URL, its name)."""
    name = f"okr_sync_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN).set(database=name).render_as_string(False)
    return url, name


def drop_postgres_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


ROOT = Path(__file__).resolve().parent.parent


async def sync_once(
    provider: str, config: dict[str, Any], credentials: dict[str, Any], database_url: str,
    workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """One full sync of a new connection on a new database, timed from the engine's start to
    its last commit. The event scan and roll-up compaction that the run asks for at its end
    are jobs of their own (on arq, any worker's), timed apart as ``after``."""
    from service.connections import service as connections
    from service.connections.schemas import ConnectionCreate
    from service.db import Database
    from service.migrate import upgrade
    from service.services import open_services
    from service.settings import Settings
    from service.sync import service as syncs
    from service.sync.engine import SyncEngine
    from service.worker.inprocess import InProcessQueue

    settings = Settings(data_dir=workdir, database_url=database_url)
    db = Database.from_url(database_url)
    await upgrade(db.engine)
    queue = InProcessQueue()
    async with open_services(settings, queue=queue, database=db) as services:
        async with db.transaction() as session:
            data = ConnectionCreate(
                provider=provider, name="bench", config=config, credentials=credentials
            )
            made = await connections.create(
                session=session, registry=services.registry, vault=services.vault, data=data
            )
            connection = await connections.resolver.get(session, str(made.id))
            run = await syncs.request_sync(session=session, connection=connection, mode="full")
        start = time.perf_counter()
        await SyncEngine(services).run(run.id)
        wall = time.perf_counter() - start
        await queue.drain(timeout=600)
        after = time.perf_counter() - start - wall
        async with db.transaction() as session:
            done = await syncs.get_run(session=session, run_id=run.id)
    await db.dispose()
    return {"wall": wall, "after": after, "status": done.status, "error": done.error,
            "fetched": done.fetched, "api_calls": done.api_calls}  # fmt: skip


def measure_sync(
    provider: str, config: dict[str, Any], credentials: dict[str, Any], backend: str
) -> dict[str, Any]:
    """``sync_once`` in a fresh process on a fresh database, so its peak RSS is its own."""
    with tempfile.TemporaryDirectory() as workdir:
        name = None
        if backend == "sqlite":
            database_url = f"sqlite:///{workdir}/bench.db"
        else:
            database_url, name = create_postgres_database()
        command = [
            sys.executable, "-m", "bench.common", "--provider", provider,
            "--config", json.dumps(config), "--credentials", json.dumps(credentials),
            "--database-url", database_url, "--workdir", workdir,
        ]  # fmt: skip
        try:
            out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        finally:
            if name:
                drop_postgres_database(name)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        if result["status"] != "succeeded":
            raise SystemExit(f"{provider} sync failed: {result['error']}")
        return result


def main() -> None:
    """Child process of ``measure_sync``: one sync, then its figures as JSON."""
    parser = argparse.ArgumentParser()
    for option in ("--provider", "--config", "--credentials", "--database-url", "--workdir"):
        parser.add_argument(option, required=True)
    args = parser.parse_args()
    result = asyncio.run(
        sync_once(args.provider, json.loads(args.config), json.loads(args.credentials),
                  args.database_url, Path(args.workdir))
    )  # fmt: skip
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries that across fork and
    exec, so a child would report its parent's size when the parent was the larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
