"""``okr-sync sync`` as a real process, with the plugin installed and the tracker on loopback."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.processes import OKR_SYNC, cli_env, free_port, run_cli, serving
from tests.tracker import TOKEN, FakeTracker, TrackerServer

ADMIN = "okr_cli-test-admin-token-0123456789"


def test_foreground_sync_full_then_incremental(example_plugin: Path, tmp_path: Path) -> None:
    tracker = FakeTracker()
    for i in range(120):
        tracker.add(str(i))
    pythonpath = os.pathsep.join(filter(None, [str(example_plugin), os.environ.get("PYTHONPATH")]))
    env = cli_env(tmp_path, PYTHONPATH=pythonpath, OKR_SYNC_BOOTSTRAP_TOKEN=ADMIN)
    with TrackerServer(tracker) as server:
        with serving(env, free_port()) as api:
            created = httpx.post(
                f"{api.url}/v1/connections",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={
                    "provider": "example",
                    "name": "tracker",
                    "config": {"base_url": server.url, "page_size": 50},
                    "credentials": {"token": TOKEN},
                },
            )
            assert created.status_code == 201, created.text

        full = run_cli("sync", "tracker", "--full", env=env)
        assert full.returncode == 0, full.stderr
        assert (
            "succeeded: fetched 120, created 120, updated 0, deleted 0, 3 API calls" in full.stderr
        )

        tracker.touch("7", title="Changed")
        again = run_cli("sync", "tracker", env=env)
        assert again.returncode == 0, again.stderr
        assert "fetched 1, created 0, updated 1" in again.stderr

    unknown = run_cli("sync", "ghost", env=env)
    assert unknown.returncode == 1
    assert "no connection 'ghost'" in unknown.stderr


@pytest.mark.redis
def test_server_and_worker_processes_share_the_work_through_redis(
    example_plugin: Path, tmp_path: Path, redis_url: str
) -> None:
    tracker = FakeTracker()
    for i in range(60):
        tracker.add(str(i))
    pythonpath = os.pathsep.join(filter(None, [str(example_plugin), os.environ.get("PYTHONPATH")]))
    env = cli_env(
        tmp_path,
        PYTHONPATH=pythonpath,
        OKR_SYNC_BOOTSTRAP_TOKEN=ADMIN,
        OKR_SYNC_REDIS_URL=redis_url,
        OKR_SYNC_QUEUE_NAME=f"okr-sync-test:{uuid.uuid4().hex}",
    )
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with TrackerServer(tracker) as server, serving(env, free_port()) as api:
        connection = httpx.post(
            f"{api.url}/v1/connections",
            headers=headers,
            json={
                "provider": "example",
                "name": "tracker",
                "config": {"base_url": server.url},
                "credentials": {"token": TOKEN},
            },
        ).json()
        run = httpx.post(
            f"{api.url}/v1/connections/{connection['id']}/sync", headers=headers, json={}
        ).json()
        worker = subprocess.Popen(
            [OKR_SYNC, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            status = "queued"
            while status in {"queued", "running"} and time.monotonic() < deadline:
                time.sleep(0.2)
                status = httpx.get(f"{api.url}/v1/sync-runs/{run['id']}", headers=headers).json()[
                    "status"
                ]
        finally:
            worker.terminate()
            output = worker.communicate(timeout=30)[0].decode()
        assert status == "succeeded", output
        items = httpx.get(
            f"{api.url}/v1/work-items", headers=headers, params={"limit": 100}
        ).json()["items"]
        assert len(items) == 60


def test_worker_without_redis_says_what_is_missing(tmp_path: Path) -> None:
    result = run_cli("worker", env=cli_env(tmp_path))
    assert result.returncode == 2
    assert "OKR_SYNC_REDIS_URL is not set" in result.stderr
