"""Prometheus metrics of the work itself: syncs, jobs, webhooks in and out.

They live on prometheus_client's process-wide registry, because jobs run wherever a worker
is: the API serves them at ``/metrics`` beside its HTTP metrics, and ``okr-sync worker``
serves them on ``OKR_SYNC_METRICS_PORT``. Counters only go up; rates come from Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from service.worker.retry import RetryLater

SYNC_RUNS = Counter(
    "okr_sync_sync_runs_total", "Sync runs that ended, by how.", ["provider", "mode", "status"]
)
SYNC_DURATION = Histogram(
    "okr_sync_sync_duration_seconds",
    "Wall time of sync runs that ended, from their start.",
    ["provider", "mode"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
SYNC_ITEMS = Counter(
    "okr_sync_sync_items_total", "Work items synced, by what happened.", ["provider", "outcome"]
)
SYNC_API_CALLS = Counter("okr_sync_sync_api_calls_total", "Calls to providers.", ["provider"])

JOBS_QUEUED = Counter("okr_sync_jobs_queued_total", "Jobs handed to the queue.", ["job"])
JOBS_RUNNING = Gauge("okr_sync_jobs_running", "Jobs running in this process.", ["job"])
JOBS_DONE = Counter(
    "okr_sync_jobs_total", "Job runs that ended: succeeded, retried or failed.", ["job", "outcome"]
)
JOB_DURATION = Histogram(
    "okr_sync_job_duration_seconds", "Time a job run took.", ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)  # fmt: skip

WEBHOOKS_RECEIVED = Counter(
    "okr_sync_webhooks_received_total",
    "Provider webhooks taken in: accepted, duplicate, ignored or ping.",
    ["provider", "outcome"],
)
WEBHOOKS_REJECTED = Counter(
    "okr_sync_webhooks_rejected_total",
    "Provider webhooks refused: bad signature, too large, or not understood.",
    ["reason"],
)
DELIVERIES = Counter(
    "okr_sync_webhook_deliveries_total",
    "Outbound delivery attempts: delivered, or failed (to be retried or given up).",
    ["outcome"],
)
MESSAGES_GIVEN_UP = Counter(
    "okr_sync_webhook_messages_failed_total",
    "Outbound messages given up on: attempts exhausted or the endpoint disabled.",
)
EVENTS = Counter("okr_sync_events_total", "Outbound events found, by type.", ["type"])


QUEUE_DEPTH = Gauge("okr_sync_job_queue_depth", "Jobs waiting in the queue, read at scrape time.")


def queue_depth(measure: Callable[[], float]) -> None:
    """Report the queue's depth through ``measure``, called when Prometheus scrapes."""
    QUEUE_DEPTH.set_function(measure)


@contextmanager
def job_run(job: str) -> Iterator[None]:
    """Count and time one run of ``job``; the caller says how it ended by raising or not."""
    JOBS_RUNNING.labels(job).inc()
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "succeeded"
    except RetryLater:
        outcome = "retried"
        raise
    finally:
        JOBS_RUNNING.labels(job).dec()
        JOBS_DONE.labels(job, outcome).inc()
        JOB_DURATION.labels(job).observe(time.perf_counter() - started)
