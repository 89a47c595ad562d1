"""The in-process queue's coalesced jobs: asked for often, they run seldom but never miss."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.worker.inprocess import InProcessQueue
from service.worker.jobs import JOBS, SPACING


async def test_a_coalesced_job_asked_for_often_runs_at_once_then_once_per_its_spacing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    queue = InProcessQueue()
    queue.services = object()  # type: ignore[assignment]  # the job takes none
    starts: list[float] = []

    async def scan(_services: Any) -> None:
        starts.append(loop.time())
        if len(starts) == 1:  # writes during the first run ask for the job again
            for _ in range(3):
                await queue.enqueue("scan_events")

    monkeypatch.setitem(JOBS, "scan_events", scan)
    monkeypatch.setitem(SPACING, "scan_events", 0.3)
    asked = loop.time()
    for _ in range(3):  # asked for three times before it starts: one run sees all three
        await queue.enqueue("scan_events")
    await queue.drain()
    # The first runs as it is asked for; the three asks during it are one more run, a
    # spacing after the first: a write during a run is still scanned for.
    assert len(starts) == 2
    assert starts[0] - asked < 0.3
    assert starts[1] - starts[0] >= 0.3
    await queue.enqueue("scan_events")
    await queue.drain()
    assert len(starts) == 3
    assert starts[2] - starts[1] >= 0.3
