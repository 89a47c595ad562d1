"""``okr-sync sync`` as a real process, with the plugin installed and the tracker on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.processes import cli_env, free_port, run_cli, serving
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
