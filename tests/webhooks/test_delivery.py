"""Delivering messages to a receiver over real HTTP: signatures a receiver's library accepts,
the retry schedule, Retry-After, disabling, the attempt log, manual retries."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.responses import RedirectResponse, Response

from service.db import Database
from service.models import WebhookEndpoint
from service.models.base import table_of
from service.webhooks.delivery import SCHEDULE, message_id
from service.webhooks.destinations import outbound_client
from tests.conftest import assert_problem
from tests.fakes.receiver import Receiver
from tests.webhooks.helpers import (
    SECRETS,
    deliver,
    endpoint,
    messages,
    seconds_until,
    time_passes,
    verified,
)

Served = tuple[Receiver, str]


async def change_endpoints(database: Database, **values: Any) -> None:
    """Set columns of every endpoint directly, as time or DNS would change them."""
    async with database.transaction() as session:
        await session.exec(sa.update(table_of(WebhookEndpoint)).values(**values))


@asynccontextmanager
async def sending_with(app: Any, *, allow_private: bool) -> AsyncIterator[None]:
    """Deliveries go through a client built now (after a test's patches), then the usual."""
    services = app.state.services
    client = outbound_client(allow_private=allow_private)
    services.outbound, usual = client, services.outbound
    try:
        yield
    finally:
        services.outbound = usual
        await client.aclose()


async def test_a_test_event_arrives_signed_as_standard_webhooks_specify(
    admin: httpx.AsyncClient, receiver: Served
) -> None:
    fake, url = receiver
    fake.default = lambda: Response("x" * 3000, status_code=200)
    made = await endpoint(admin, url)
    delivered = REGISTRY.get_sample_value(
        "okr_sync_webhook_deliveries_total", {"outcome": "delivered"}
    )
    queued = await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    assert queued.status_code == 202
    [arrived] = fake.received
    after = REGISTRY.get_sample_value("okr_sync_webhook_deliveries_total", {"outcome": "delivered"})
    assert (after or 0) - (delivered or 0) == 1
    body = verified(arrived, made["secret"])
    assert body["type"] == "webhook.test"
    assert body["data"]["endpoint_id"] == made["id"]
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert arrived.headers["webhook-id"] == queued.json()["webhook_id"]
    assert abs(int(arrived.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert arrived.headers["content-type"] == "application/json"
    # A receiver with another secret, or a tampered body, rejects it.
    with pytest.raises(WebhookVerificationError):
        Webhook(made["secret"][:-4] + "AAA=").verify(arrived.body, arrived.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(made["secret"]).verify(arrived.body.replace(b"test", b"tess"), arrived.headers)

    log = (await admin.get(f"/v1/webhook-endpoints/{made['id']}/deliveries")).json()["items"]
    [attempt] = log
    assert (attempt["status_code"], attempt["succeeded"], attempt["attempt"]) == (200, True, 1)
    assert attempt["webhook_id"] == arrived.headers["webhook-id"]
    assert attempt["event_type"] == "webhook.test"
    assert attempt["response"] == "x" * 1024  # the first KiB only
    assert attempt["duration_ms"] > 0
    message = (await admin.get(f"/v1/webhook-messages/{queued.json()['id']}")).json()
    assert (message["status"], message["attempts"]) == ("succeeded", 1)


async def test_during_a_rotation_both_secrets_sign_for_a_day(
    admin: httpx.AsyncClient, receiver: Served, database: Database
) -> None:
    fake, url = receiver
    made = await endpoint(admin, url)
    rotated = (await admin.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret")).json()
    SECRETS.append(rotated["secret"])
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    signatures = fake.received[-1].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    verified(fake.received[-1], made["secret"], rotated["secret"])
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)

    await change_endpoints(
        database, previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    last = fake.received[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    verified(last, rotated["secret"])
    with pytest.raises(WebhookVerificationError):
        verified(last, made["secret"])


async def test_failures_retry_on_the_schedule_with_the_same_id(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    fake.answer_next(Response("down", 503), Response("still down", 500), Response("gateway", 502))
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    waits = []
    for _ in range(3):
        [message] = await messages(database)
        assert message.status == "pending"
        waits.append(seconds_until(message.next_attempt_at))
        await time_passes(database, SCHEDULE[message.attempts] * 1.2)
        await deliver(app)
    # 5 s, 5 min, 30 min, each within the 10% jitter.
    for wait, planned in zip(waits, SCHEDULE[1:4], strict=True):
        assert planned * 0.85 <= wait <= planned * 1.1, (wait, planned)
    [message] = await messages(database)
    assert (message.status, message.attempts) == ("succeeded", 4)
    assert len(set(fake.ids())) == 1
    assert len(fake.received) == 4
    log = (await admin.get(f"/v1/webhook-endpoints/{made['id']}/deliveries")).json()["items"]
    assert [(d["attempt"], d["status_code"]) for d in log] == [
        (4, 200), (3, 502), (2, 500), (1, 503),
    ]  # fmt: skip
    assert [d["response"] for d in log[1:]] == ["gateway", "still down", "down"]
    endpoint_now = (await admin.get(f"/v1/webhook-endpoints/{made['id']}")).json()
    assert endpoint_now["failing_since"] is None


async def test_retry_after_is_honoured(
    admin: httpx.AsyncClient, receiver: Served, database: Database
) -> None:
    fake, url = receiver
    fake.answer_next(Response("slow down", 429, headers={"Retry-After": "120"}))
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    [message] = await messages(database)
    assert 115 <= seconds_until(message.next_attempt_at) <= 120


async def test_gone_disables_the_endpoint_and_nothing_more_is_queued_for_it(
    admin: httpx.AsyncClient, receiver: Served, database: Database
) -> None:
    fake, url = receiver
    fake.answer_next(Response("gone", 410))
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    shown = (await admin.get(f"/v1/webhook-endpoints/{made['id']}")).json()
    assert shown["enabled"] is False
    assert "410" in shown["disabled_reason"]
    [message] = await messages(database)
    assert message.status == "failed"
    assert_problem(await admin.post(f"/v1/webhook-endpoints/{made['id']}/test"), 409, "conflict")
    refused = await admin.post(f"/v1/webhook-messages/{message.id}/retry")
    assert_problem(refused, 409, "conflict")
    # Enabled again, a retry sends it.
    again = await admin.patch(f"/v1/webhook-endpoints/{made['id']}", json={"enabled": True})
    assert (again.json()["enabled"], again.json()["disabled_reason"]) == (True, None)
    assert (await admin.post(f"/v1/webhook-messages/{message.id}/retry")).status_code == 202
    assert len(fake.received) == 2
    assert fake.ids()[0] == fake.ids()[1]


async def test_five_days_of_failures_disable_the_endpoint(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    fake.default = lambda: Response("no", 500)
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    shown = (await admin.get(f"/v1/webhook-endpoints/{made['id']}")).json()
    assert shown["enabled"] is True
    assert shown["failing_since"] is not None
    await change_endpoints(database, failing_since=datetime.now(UTC) - timedelta(days=5))
    await time_passes(database, 10)
    await deliver(app)
    shown = (await admin.get(f"/v1/webhook-endpoints/{made['id']}")).json()
    assert shown["enabled"] is False
    assert "5 days" in shown["disabled_reason"]


async def test_after_the_last_attempt_the_message_fails_and_a_manual_retry_sends_it(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    fake.default = lambda: Response("no", 500)
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    for _ in range(len(SCHEDULE) - 1):
        await time_passes(database, 11 * 3600)
        await deliver(app)
    [message] = await messages(database)
    assert (message.status, message.attempts) == ("failed", len(SCHEDULE))
    assert len(fake.received) == len(SCHEDULE)
    fake.default = lambda: Response("ok")
    retried = await admin.post(f"/v1/webhook-messages/{message.id}/retry")
    assert retried.status_code == 202
    [message] = await messages(database)
    assert message.status == "succeeded"
    assert set(fake.ids()) == {message_id(message.id)}
    assert_problem(await admin.post(f"/v1/webhook-messages/{uuid.uuid4()}/retry"), 404, "not-found")


async def test_redirects_are_not_followed(admin: httpx.AsyncClient, receiver: Served) -> None:
    fake, url = receiver
    fake.answer_next(RedirectResponse(url + "/elsewhere", status_code=307))
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    assert len(fake.received) == 1
    [attempt] = (await admin.get(f"/v1/webhook-endpoints/{made['id']}/deliveries")).json()["items"]
    assert (attempt["status_code"], attempt["succeeded"]) == (307, False)


async def test_a_private_address_is_refused_when_the_connection_is_made(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    """A name that resolved to a public address when saved may resolve elsewhere later: the
    check at connect time refuses the private address actually dialled."""
    fake, url = receiver
    made = await endpoint(admin, url)
    async with sending_with(app, allow_private=False):
        for host in ("127.0.0.1", "localhost"):
            await change_endpoints(database, url=url.replace("127.0.0.1", host))
            await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    assert fake.received == []
    log = (await admin.get(f"/v1/webhook-endpoints/{made['id']}/deliveries")).json()["items"]
    assert len(log) == 2
    for attempt in log:
        assert attempt["status_code"] is None
        assert "private" in attempt["error"]


async def test_the_body_is_the_same_bytes_on_every_attempt(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any
) -> None:
    fake, url = receiver
    fake.answer_next(Response("no", 500))
    made = await endpoint(admin, url)
    await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    await time_passes(database, 10)
    await deliver(app)
    first, second = fake.received
    assert first.body == second.body
    assert json.loads(first.body)["timestamp"] == json.loads(second.body)["timestamp"]
    verified(second, made["secret"])


async def test_a_receiver_that_does_not_answer_in_time_counts_as_a_failure(
    admin: httpx.AsyncClient, receiver: Served, database: Database, app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The production timeout is 10 s; the test shortens it to see the path without waiting."""
    import asyncio
    import threading

    from service.webhooks import destinations

    fake, url = receiver
    release = threading.Event()

    async def hang() -> Response:
        await asyncio.to_thread(release.wait, 10)
        return Response("late")

    fake.answer_next(hang)
    assert destinations.TIMEOUT.read == 10.0
    monkeypatch.setattr(destinations, "TIMEOUT", httpx.Timeout(0.5))
    try:
        async with sending_with(app, allow_private=True):
            made = await endpoint(admin, url)
            await admin.post(f"/v1/webhook-endpoints/{made['id']}/test")
    finally:
        release.set()
    [attempt] = (await admin.get(f"/v1/webhook-endpoints/{made['id']}/deliveries")).json()["items"]
    assert attempt["status_code"] is None
    assert "Timeout" in attempt["error"]
    [message] = await messages(database)
    assert (message.status, message.attempts) == ("pending", 1)
