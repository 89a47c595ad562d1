"""The production topology on one machine, without containers: PostgreSQL, Redis, two API
processes and two arq workers, a local GitHub and a webhook receiver, each in a process of its
own. A full sync and its webhook deliveries run through them; the worker running the sync is
killed with SIGKILL half-way and replaced. The end state must equal a clean run's, with no
item and no message lost or duplicated."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.common import sync_once
from service.db import create_engine
from tests.conftest import fresh_postgres_database
from tests.fakes.github import TOKEN
from tests.processes import OKR_SYNC, cli_env, free_port, run_cli, serving

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
ISSUES = 8000
ADMIN = "topology-admin-token-" + "0" * 20
REPOS = ["acme/api", "acme/web"]


async def wait_until(
    what: str, check: Callable[[], bool | Awaitable[bool]], timeout: float
) -> None:
    """Poll ``check`` (plain or async) until it holds, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def reachable(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return False
        return True

    return check


ITEMS = sa.text(
    "SELECT w.external_id, w.key, w.title, w.kind, w.status_category, p.external_id,"
    " w.is_leaf, w.category, w.deleted_at IS NULL, w.estimate"
    " FROM work_items w LEFT JOIN work_items p ON p.id = w.parent_id ORDER BY w.external_id"
)


async def rows(url: str, statement: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(statement)).all()]
    finally:
        await engine.dispose()


def topology_env(tmp_path: Path, url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """What every process of one deployment shares: database, queue, keys, and short
    timings so that a test sees a lease lapse in seconds."""
    settings = {
        "OKR_SYNC_DATABASE_URL": url,
        "OKR_SYNC_REDIS_URL": redis_url,
        "OKR_SYNC_QUEUE_NAME": f"okr-sync-topology:{uuid.uuid4().hex}",
        "OKR_SYNC_SECRET_KEY": Fernet.generate_key().decode(),
        "OKR_SYNC_BOOTSTRAP_TOKEN": ADMIN,
        "OKR_SYNC_ALLOW_PRIVATE_WEBHOOK_URLS": "true",
        "OKR_SYNC_UNLINKED_GRACE_HOURS": "0",
        "OKR_SYNC_SYNC_LEASE_SECONDS": "5",
        "OKR_SYNC_WORKER_SHUTDOWN_WAIT_SECONDS": "5",
        "OKR_SYNC_LOG_LEVEL": "WARNING",
    }
    return cli_env(tmp_path, **(settings | extra))


async def test_a_worker_killed_mid_sync_loses_and_duplicates_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    url, drop = await fresh_postgres_database()
    clean_url, drop_clean = await fresh_postgres_database()
    env = topology_env(tmp_path, url, redis_url)
    github_port, receiver_port = free_port(), free_port()
    github = f"http://127.0.0.1:{github_port}"
    received_log = tmp_path / "received.jsonl"
    try:
        with ExitStack() as stack:
            stack.enter_context(process(
                [sys.executable, "-m", "tests.fakes.github", "--issues", str(ISSUES),
                 "--port", str(github_port), "--cursor-links", "--delay", "0.05"],
                tmp_path / "github.log",
            ))  # fmt: skip
            stack.enter_context(process(
                [sys.executable, "-m", "tests.fakes.receiver", "--port", str(receiver_port),
                 "--log", str(received_log)],
                tmp_path / "receiver.log",
            ))  # fmt: skip
            assert run_cli("migrate", env=env).returncode == 0
            apis = [stack.enter_context(serving(env, free_port())) for _ in range(2)]
            workers = {
                n: stack.enter_context(process([OKR_SYNC, "worker"], tmp_path / f"w{n}.log", env))
                for n in (1, 2)
            }
            await wait_until("the local GitHub", reachable(f"{github}/rate_limit"), 30)
            await wait_until("the receiver", reachable(f"http://127.0.0.1:{receiver_port}/"), 30)
            one, two = (
                httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {ADMIN}"},
                             timeout=10)
                for a in apis
            )  # fmt: skip
            stack.callback(one.close)
            stack.callback(two.close)

            endpoint = one.post(
                "/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:{receiver_port}/hook",
                      "event_types": ["epic.unlinked", "sync.completed"]},
            )  # fmt: skip
            assert endpoint.status_code == 201, endpoint.text
            config = {"api_url": github, "repos": REPOS}
            connection = two.post(
                "/v1/connections",
                json={"provider": "github", "name": "acme", "config": config,
                      "credentials": {"token": TOKEN}},
            )  # fmt: skip
            assert connection.status_code == 201, connection.text
            run = one.post(f"/v1/connections/{connection.json()['id']}/sync", json={"mode": "full"})
            assert run.status_code == 202, run.text
            run_id = run.json()["id"]

            def progress() -> dict[str, Any]:
                answer: dict[str, Any] = two.get(f"/v1/sync-runs/{run_id}").json()
                return answer

            await wait_until("two pages", lambda: progress()["pages"] >= 2, 60)
            [[owner]] = await rows(
                url, sa.text(f"SELECT lease_owner FROM sync_runs WHERE id = '{run_id}'")
            )
            pid = int(owner.split(":")[1])
            victim = next(n for n, proc in workers.items() if proc.pid == pid)
            os.kill(pid, signal.SIGKILL)
            workers[victim].wait(timeout=10)
            pages_at_kill = progress()["pages"]
            assert progress()["status"] == "running"
            # The replacement (a restarted pod, say).
            workers[3] = stack.enter_context(
                process([OKR_SYNC, "worker"], tmp_path / "w3.log", env)
            )

            await wait_until("the sync to finish", lambda: progress()["status"] != "running", 180)
            finished = progress()
            assert finished["status"] == "succeeded", finished["error"]
            assert finished["attempts"] >= 2
            assert finished["pages"] > pages_at_kill

            epics = await rows(url, sa.text(
                "SELECT count(*) FROM work_items WHERE kind = 'epic' AND deleted_at IS NULL"
                " AND status_category IN ('todo', 'in_progress')"
            ))  # fmt: skip
            expected = epics[0][0] + 1  # each unlinked epic, and the sync

            async def settled() -> bool:
                states = await rows(
                    url, sa.text("SELECT status, count(*) FROM webhook_messages GROUP BY 1")
                )
                return states == [("succeeded", expected)]

            await wait_until("every message delivered", settled, 180)

            # SIGTERM: the survivors stop cleanly within their wait.
            for n in (2 if victim == 1 else 1, 3):
                workers[n].terminate()
                assert workers[n].wait(timeout=30) == 0

        # The same sync, clean, on a database of its own (the local GitHub is gone; serve again).
        with process(
            [sys.executable, "-m", "tests.fakes.github", "--issues", str(ISSUES),
             "--port", str(github_port), "--cursor-links"],
            tmp_path / "github-clean.log",
        ):  # fmt: skip
            await wait_until("the local GitHub", reachable(f"{github}/rate_limit"), 30)
            clean = await sync_once("github", config, {"token": TOKEN}, clean_url, tmp_path)
        assert clean["status"] == "succeeded"

        topology_items, clean_items = await rows(url, ITEMS), await rows(clean_url, ITEMS)
        assert len(topology_items) == len({r[0] for r in topology_items}) > ISSUES * 0.9
        assert topology_items == clean_items

        messages = await rows(
            url, sa.text("SELECT id, event_type, body FROM webhook_messages ORDER BY id")
        )
        subjects = [
            (kind, json.loads(body)["data"].get("work_item", {}).get("external_id"))
            for _, kind, body in messages
        ]
        assert len(subjects) == len(set(subjects)), "an event was written twice"
        assert sorted(k for k, _ in subjects) == ["epic.unlinked"] * (expected - 1) + [
            "sync.completed"
        ]
        lines = [json.loads(line) for line in received_log.read_text().splitlines()]
        arrived = [line["id"] for line in lines if line["id"]]  # not the readiness probe
        # At least once: every message arrived; a repeat could only carry the same id.
        assert set(arrived) == {f"msg_{uuid.UUID(str(m[0])).hex}" for m in messages}
    finally:
        await drop()
        await drop_clean()


async def test_a_worker_stopped_mid_sync_hands_the_run_back(redis_url: str, tmp_path: Path) -> None:
    """SIGTERM with a sync running longer than the worker may wait: the worker stops within
    its wait, the run is handed back (no lease left to lapse), and the next worker ends it."""
    url, drop = await fresh_postgres_database()
    env = topology_env(tmp_path, url, redis_url, OKR_SYNC_WORKER_SHUTDOWN_WAIT_SECONDS="1")
    github_port = free_port()
    github = f"http://127.0.0.1:{github_port}"
    try:
        with ExitStack() as stack:
            stack.enter_context(process(
                [sys.executable, "-m", "tests.fakes.github", "--issues", str(ISSUES),
                 "--port", str(github_port), "--cursor-links", "--delay", "0.05"],
                tmp_path / "github.log",
            ))  # fmt: skip
            assert run_cli("migrate", env=env).returncode == 0
            api = stack.enter_context(serving(env, free_port()))
            first = stack.enter_context(process([OKR_SYNC, "worker"], tmp_path / "w1.log", env))
            await wait_until("the local GitHub", reachable(f"{github}/rate_limit"), 30)
            client = httpx.Client(
                base_url=api.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
            )
            stack.callback(client.close)
            connection = client.post(
                "/v1/connections",
                json={"provider": "github", "name": "acme", "credentials": {"token": TOKEN},
                      "config": {"api_url": github, "repos": REPOS}},
            )  # fmt: skip
            assert connection.status_code == 201, connection.text
            run_id = client.post(
                f"/v1/connections/{connection.json()['id']}/sync", json={"mode": "full"}
            ).json()["id"]

            def progress() -> dict[str, Any]:
                answer: dict[str, Any] = client.get(f"/v1/sync-runs/{run_id}").json()
                return answer

            await wait_until("a page", lambda: progress()["pages"] >= 1, 60)
            stopped_at = time.monotonic()
            first.terminate()
            assert first.wait(timeout=20) == 0
            assert time.monotonic() - stopped_at < 10
            [[status, owner]] = await rows(
                url, sa.text(f"SELECT status, lease_owner FROM sync_runs WHERE id = '{run_id}'")
            )
            assert (status, owner) == ("running", None)

            stack.enter_context(process([OKR_SYNC, "worker"], tmp_path / "w2.log", env))
            await wait_until("the sync to finish", lambda: progress()["status"] != "running", 120)
            finished = progress()
            assert finished["status"] == "succeeded", finished["error"]
            [[items, distinct]] = await rows(
                url, sa.text("SELECT count(*), count(DISTINCT external_id) FROM work_items")
            )
            assert items == distinct > ISSUES * 0.9
    finally:
        await drop()
