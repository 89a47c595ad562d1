"""Prometheus metrics of syncs, jobs and webhooks move with the work and are served."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client import REGISTRY

from tests import factories
from tests.sync.conftest import app, example_plugin, tracker
from tests.sync.helpers import connect, portfolio
from tests.tracker import FakeTracker

__all__ = ["app", "example_plugin", "tracker"]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def sync_metrics() -> dict[str, float]:
    """The sync and job metrics a full sync of the example connector moves."""
    full = {"provider": "example", "mode": "full"}
    return {
        "runs": value("okr_sync_sync_runs_total", **full, status="succeeded"),
        "fetched": value("okr_sync_sync_items_total", provider="example", outcome="fetched"),
        "created": value("okr_sync_sync_items_total", provider="example", outcome="created"),
        "calls": value("okr_sync_sync_api_calls_total", provider="example"),
        "jobs": value("okr_sync_jobs_total", job="sync_connection", outcome="succeeded"),
        "queued": value("okr_sync_jobs_queued_total", job="sync_connection"),
        "durations": value("okr_sync_sync_duration_seconds_count", **full),
    }


async def test_a_sync_moves_the_sync_and_job_metrics(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, tracker: FakeTracker
) -> None:
    portfolio(tracker, 40)
    connection_id = await connect(admin)
    before = sync_metrics()
    run = await admin.post(f"/v1/connections/{connection_id}/sync", json={"mode": "full"})
    assert run.status_code == 202
    after = sync_metrics()
    moved = {k: after[k] - before[k] for k in before}
    assert moved["runs"] == moved["jobs"] == moved["queued"] == moved["durations"] == 1
    assert moved["fetched"] == moved["created"] == 40
    assert moved["calls"] >= 1
    assert value("okr_sync_jobs_running", job="sync_connection") == 0

    exposition = (await anonymous.get("/metrics")).text
    for name in ("okr_sync_sync_runs_total", "okr_sync_jobs_total", "okr_sync_job_queue_depth",
                 "okr_sync_http_requests_total", "okr_sync_webhooks_rejected_total"):  # fmt: skip
        assert name in exposition


async def test_a_failed_sync_counts_as_failed(
    admin: httpx.AsyncClient,
    tracker: FakeTracker,  # noqa: ARG001 (serves the tracker)
) -> None:
    body = {"provider": "example", "name": "bad", "config": {"base_url": "https://tracker.example"},
            "credentials": {"token": "wrong"}}  # fmt: skip
    made = await factories.created(admin.post("/v1/connections", json=body))
    before = value("okr_sync_sync_runs_total", provider="example", mode="full", status="failed")
    await admin.post(f"/v1/connections/{made['id']}/sync", json={"mode": "full"})
    after = value("okr_sync_sync_runs_total", provider="example", mode="full", status="failed")
    assert after - before == 1


async def test_refused_webhooks_are_counted_by_reason(anonymous: httpx.AsyncClient) -> None:
    before = value("okr_sync_webhooks_rejected_total", reason="unknown_connection")
    refused = await anonymous.post(f"/hooks/{uuid.uuid4()}", content=b"{}")
    assert refused.status_code == 404
    assert value("okr_sync_webhooks_rejected_total", reason="unknown_connection") - before == 1
