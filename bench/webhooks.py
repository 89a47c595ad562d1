"""Benchmark: inbound webhooks acknowledged per second, outbound deliveries per second.

    python -m bench.webhooks                      # SQLite and PostgreSQL, full size
    python -m bench.webhooks --requests 500 --messages 300 --backends sqlite   # CI's smoke run

Inbound: ``okr-sync serve`` runs in its own process on a fresh database with a GitHub
connection; a second process (``python -m bench.webhooks load``) sends GitHub's published
``issues.opened`` example, each with its own delivery id and issue, signed with
X-Hub-Signature-256, from ``--concurrency`` connections on loopback, and times every answer.
On SQLite the server applies the events itself (no Redis: the embedded default); on PostgreSQL
they go to Redis for arq workers, none of which runs, so only the acknowledgement is timed.

Outbound: ``--messages`` events are written to the outbox for one endpoint; the delivery job
sends them to a local receiver (a plain ASGI app in its own process) and records each attempt.
Deliveries per second count from the job's start until every message is recorded delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

import httpx

from bench.common import (
    ROOT,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    machine,
)

EXAMPLE = ROOT.parent / "shared" / "upstream" / "github" / "webhooks" / "examples"
SECRET = "bench-webhook-secret-0123456789"
TOKEN = "bench-admin-token-" + "0" * 24
REDIS_URL = os.environ.get("OKR_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# -- the load generator (a process of its own) -----------------------------------------------


def _events(n: int) -> list[tuple[bytes, dict[str, str]]]:
    template = json.loads((EXAMPLE / "issues.opened.json").read_text())
    made = []
    for i in range(n):
        template["issue"]["id"] = 10_000_000 + i
        template["issue"]["number"] = 100_000 + i
        body = json.dumps(template).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        made.append(
            (body, {"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": f"sha256={signature}",
                    "Content-Type": "application/json"})
        )  # fmt: skip
    return made


async def _load(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    events = _events(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "requests": requests, "seconds": seconds, "per_second": requests / seconds,
        "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
        "statuses": statuses,
    }  # fmt: skip


# -- the runs ---------------------------------------------------------------------------------


def _server_env(database_url: str, data_dir: str, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKR_SYNC_")}
    env.update(
        OKR_SYNC_DATABASE_URL=database_url, OKR_SYNC_DATA_DIR=data_dir,
        OKR_SYNC_BOOTSTRAP_TOKEN=TOKEN, OKR_SYNC_LOG_LEVEL="WARNING",
    )  # fmt: skip
    if redis:
        env.update(OKR_SYNC_REDIS_URL=REDIS_URL, OKR_SYNC_QUEUE_NAME=f"bench:{uuid.uuid4().hex}")
    return env


class Served(NamedTuple):
    bases: list[str]  # one base URL per replica
    connection_id: str
    pids: list[int]  # the replicas' processes

    @property
    def base(self) -> str:
        return self.bases[0]


@contextmanager
def serving(
    database_url: str,
    data_dir: str,
    *,
    redis: bool,
    secret: str,
    stderr: IO[str] | int,
    replicas: int = 1,
) -> Iterator[Served]:
    """``okr-sync serve`` on free ports, ``replicas`` of it on one database and data directory
    (so one secret key), with a GitHub connection whose webhooks are signed with ``secret``:
    their base URLs and the connection's id, until the block ends."""
    servers: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for _ in range(replicas):  # one after another: the first makes the secret key
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [str(Path(sys.executable).parent / "okr-sync"), "serve", "--port", str(port)],
                    cwd=ROOT, env=_server_env(database_url, data_dir, redis),
                    stdout=subprocess.DEVNULL, stderr=stderr,
                )
            )  # fmt: skip
            bases.append(f"http://127.0.0.1:{port}")
            wait_for(f"{bases[-1]}/healthz", servers[-1])
        made = httpx.post(
            f"{bases[0]}/v1/connections",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"provider": "github", "name": "hooks", "config": {"repos": ["octo/hello"]},
                  "credentials": {"token": "ghp_bench"}, "webhook_secret": secret},
        )  # fmt: skip
        made.raise_for_status()
        yield Served(bases, made.json()["id"], [server.pid for server in servers])
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def inbound(
    database_url: str, data_dir: str, redis: bool, requests: int, concurrency: int
) -> dict[str, Any]:
    with serving(database_url, data_dir, redis=redis, secret=SECRET, stderr=subprocess.DEVNULL) as (
        served
    ):
        load = subprocess.run(
            [sys.executable, "-m", "bench.webhooks", "load",
             f"{served.base}/hooks/{served.connection_id}",
             str(requests), str(concurrency)],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(load.stdout)
        return result


RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


async def _outbound(database_url: str, data_dir: str, url: str, messages: int) -> dict[str, Any]:
    from sqlmodel import col, func, select

    from service.migrate import upgrade
    from service.models import WebhookDelivery, WebhookMessage
    from service.services import open_services
    from service.settings import Settings
    from service.webhooks import outbox
    from service.webhooks import service as endpoints
    from service.webhooks.delivery import deliver_due
    from service.webhooks.events import EventType
    from service.webhooks.schemas import EndpointCreate
    from service.worker.inprocess import InProcessQueue

    settings = Settings(
        database_url=database_url, data_dir=Path(data_dir), allow_private_webhook_urls=True
    )
    async with open_services(settings, queue=InProcessQueue()) as services:
        await upgrade(services.db.engine)
        async with services.db.transaction() as session:
            await endpoints.create(
                session=session, vault=services.vault, data=EndpointCreate(url=url),
                allow_private=True,
            )  # fmt: skip
            events = [
                outbox.Event(EventType.webhook_test, {"n": i}, about_team=False)
                for i in range(messages)
            ]
            await outbox.emit(session, events)
        started = time.perf_counter()
        attempts = await deliver_due(services, services.outbound)
        seconds = time.perf_counter() - started
        async with services.db.transaction() as session:
            delivered = (
                await session.exec(
                    select(func.count()).where(col(WebhookMessage.status) == "succeeded")
                )
            ).one()
            durations = list((await session.exec(select(WebhookDelivery.duration_ms))).all())
    return {
        "messages": messages, "delivered": delivered, "attempts": attempts, "seconds": seconds,
        "per_second": delivered / seconds, "attempt_p50_ms": statistics.median(durations),
        "attempt_p99_ms": percentile(durations, 0.99),
    }  # fmt: skip


def outbound(database_url: str, data_dir: str, messages: int) -> dict[str, Any]:
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        wait_for(f"http://127.0.0.1:{port}/", receiver)
        return asyncio.run(_outbound(database_url, data_dir, f"http://127.0.0.1:{port}/", messages))
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"backend": backend}
    for part in ("inbound", "outbound"):
        with tempfile.TemporaryDirectory() as data_dir:
            drop = None
            if backend == "sqlite":
                url = f"sqlite:///{data_dir}/bench.db"
            else:
                url, drop = create_postgres_database()
            try:
                if part == "inbound":
                    results[part] = inbound(
                        url, data_dir, backend == "postgres", args.requests, args.concurrency
                    )
                else:
                    results[part] = outbound(url, data_dir, args.messages)
            finally:
                if drop is not None:
                    drop_postgres_database(drop)
    return results


def report(results: list[dict[str, Any]]) -> None:
    print(f"\n{machine()}")
    print("| backend | inbound acks/s | p50 ms | p99 ms | non-202 | outbound deliveries/s "
          "| attempt p50 ms | attempt p99 ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        i, o = r["inbound"], r["outbound"]
        others = sum(n for status, n in i["statuses"].items() if str(status) != "202")
        print(
            f"| {r['backend']} | {i['per_second']:.0f} | {i['p50_ms']:.1f} | {i['p99_ms']:.1f} "
            f"| {others} | {o['per_second']:.0f} | {o['attempt_p50_ms']:.1f} "
            f"| {o['attempt_p99_ms']:.1f} |"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        url, requests, concurrency = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(asyncio.run(_load(url, requests, concurrency))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = [run(backend, args) for backend in args.backends.split(",")]
    report(results)
    failed = [
        r for r in results
        if set(map(str, r["inbound"]["statuses"])) != {"202"}
        or r["outbound"]["delivered"] != args.messages
    ]  # fmt: skip
    if failed:
        print(json.dumps(failed, indent=2))
        raise SystemExit("some webhooks were refused or not delivered")


if __name__ == "__main__":
    main()
