"""Structured logs: JSON lines carrying the request id, from the request into its jobs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service import logs
from tests.sync.conftest import app, example_plugin, tracker
from tests.sync.helpers import connect, portfolio
from tests.tracker import FakeTracker

__all__ = ["app", "example_plugin", "tracker"]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the JSON handler writes, for every logger, while the test runs."""
    stream = io.StringIO()
    made = logs.handler("json", stream)
    root = logging.getLogger()
    root.addHandler(made)
    try:
        yield stream
    finally:
        root.removeHandler(made)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_request_id_is_answered_chosen_or_made(admin: httpx.AsyncClient) -> None:
    chosen = await admin.get("/v1/teams", headers={"X-Request-ID": "trace-42.a_b:c"})
    assert chosen.headers["x-request-id"] == "trace-42.a_b:c"
    made = await admin.get("/v1/teams")
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != (await admin.get("/v1/teams")).headers["x-request-id"]
    # An id that could break a log line or flood it is replaced, not echoed.
    for unfit in ("a b", "x" * 129, "<script>", "a;b"):
        answered = await admin.get("/v1/teams", headers={"X-Request-ID": unfit})
        assert answered.headers["x-request-id"] != unfit
    problem = await admin.get("/v1/teams/nobody", headers={"X-Request-ID": "on-errors-too"})
    assert problem.status_code == 404
    assert problem.headers["x-request-id"] == "on-errors-too"


async def test_a_sync_started_by_a_request_logs_with_its_id(
    admin: httpx.AsyncClient, tracker: FakeTracker, captured: io.StringIO
) -> None:
    portfolio(tracker, 30)
    connection_id = await connect(admin)
    started = await admin.post(
        f"/v1/connections/{connection_id}/sync", json={"mode": "full"},
        headers={"X-Request-ID": "req-sync-1"},
    )  # fmt: skip
    assert started.status_code == 202
    records = lines(captured)
    succeeded = [r for r in records if r["message"] == "sync.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0]["request_id"] == "req-sync-1"
    assert succeeded[0]["level"] == "INFO"
    assert succeeded[0]["logger"] == "service.sync.engine"
    assert succeeded[0]["items_fetched"] == 30
    assert "time" in succeeded[0]
    pages = [r for r in records if r["message"] == "sync.page_committed"]
    assert pages
    assert {r["request_id"] for r in pages} == {"req-sync-1"}
    # Outside any request there is no id.
    logging.getLogger("okr_sync.test").info("outside")
    assert lines(captured)[-1]["request_id"] is None


def test_the_text_format_shows_the_id_too() -> None:
    stream = io.StringIO()
    made = logs.handler("text", stream)
    token = logs.request_id.set("abc")
    try:
        made.handle(logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None))
    finally:
        logs.request_id.reset(token)
    assert stream.getvalue() == "INFO x [abc] hello\n"
