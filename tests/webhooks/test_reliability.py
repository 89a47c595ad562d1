"""Nothing is lost: a receiver that is down for a while, a worker killed mid-delivery, a burst
of a thousand events. Every message is checked as a receiver checks it."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select
from starlette.responses import Response

from service.db import Database
from service.models import WebhookMessage
from service.webhooks import outbox
from service.webhooks.delivery import deliver_due, message_id
from service.webhooks.events import EventType
from tests.fakes.receiver import Receiver
from tests.sync.helpers import connect, sync
from tests.tracker import FakeTracker
from tests.webhooks.helpers import deliver, endpoint, messages, time_passes, verified

Served = tuple[Receiver, str]


async def queue_events(database: Database, n: int) -> None:
    """``n`` events written as a change would write them, without running the delivery job."""
    async with database.transaction() as session:
        batch = [outbox.Event(EventType.webhook_test, {"n": i}, about_team=False) for i in range(n)]
        assert await outbox.emit(session, batch) == n


async def test_a_receiver_down_for_a_while_gets_every_message_once_back(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    made = await endpoint(admin, url)
    down = {"left": 130}

    def flaky() -> Response:
        with fake.lock:
            down["left"] -= 1
            return Response("down", 503) if down["left"] >= 0 else Response("ok")

    fake.default = flaky
    await queue_events(database, 50)
    for _ in range(8):  # bounded: the schedule's attempts
        await deliver(app)
        if all(m.status == "succeeded" for m in await messages(database)):
            break
        await time_passes(database, 11 * 3600)
    stored = await messages(database)
    assert {m.status for m in stored} == {"succeeded"}
    attempts = Counter(fake.ids())
    assert set(attempts) == {message_id(m.id) for m in stored}
    # Each message's attempts all carried its one id: as many arrivals as attempts.
    assert all(attempts[message_id(m.id)] == m.attempts for m in stored)
    assert sum(attempts.values()) == 130 + 50
    assert {verified(r, made["secret"])["data"]["n"] for r in fake.received} == set(range(50))


async def test_a_worker_killed_mid_delivery_delivers_after_restart(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    made = await endpoint(admin, url)
    arrived, release = threading.Event(), threading.Event()

    async def hang() -> Response:
        arrived.set()
        await asyncio.to_thread(release.wait, 30)
        return Response("too late")

    fake.answer_next(hang)
    await queue_events(database, 1)
    services = app.state.services
    worker = asyncio.create_task(deliver_due(services, services.outbound))
    assert await asyncio.to_thread(arrived.wait, 10)
    worker.cancel()  # the worker dies while the receiver holds the request
    await asyncio.gather(worker, return_exceptions=True)
    release.set()

    [message] = await messages(database)
    assert message.status == "pending"
    assert message.claimed_until is not None
    await deliver(app)
    assert len(fake.received) == 1  # its claim holds until it lapses
    async with database.transaction() as session:
        stored = (await session.exec(select(WebhookMessage))).one()
        stored.claimed_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(stored)
    await deliver(app)
    [message] = await messages(database)
    assert (message.status, message.attempts) == ("succeeded", 1)
    first, second = fake.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message_id(message.id)
    verified(second, made["secret"])


async def test_a_burst_of_a_thousand_events_is_delivered_whole(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker, database: Database
) -> None:
    """A first sync of 1,000 open epics linked to nothing: 1,000 epic.unlinked events."""
    fake, url = receiver
    made = await endpoint(admin, url, event_types=["epic.unlinked"])
    for n in range(1000):
        tracker.add(f"E{n}", type="epic")
    connection = await connect(admin, page_size=200)
    assert (await sync(admin, connection, "full"))["status"] == "succeeded"
    stored = await messages(database)
    assert len(stored) == 1000
    assert {m.status for m in stored} == {"succeeded"}
    assert sorted(fake.ids()) == sorted(message_id(m.id) for m in stored)
    keys = {verified(r, made["secret"])["data"]["work_item"]["key"] for r in fake.received}
    assert len(keys) == 1000
