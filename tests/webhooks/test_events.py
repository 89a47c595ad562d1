"""Which events go out, and exactly when (DESIGN section 6): the portfolio of
tests/portfolio/world.py synced through the example connector, a subscriber on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from service.db import Database
from service.models import CheckIn, EpicWatch, KeyResultWatch, WebhookMessage
from service.models.base import table_of
from tests.fakes.receiver import Receiver
from tests.portfolio.world import TEAM_MAP, World, build, link
from tests.tracker import BASE_URL, FakeTracker
from tests.webhooks.helpers import endpoint, events, scan, verified

Served = tuple[Receiver, str]


def kinds(fake: Receiver) -> list[tuple[str, str]]:
    """(type, what it is about) of every event received, in order."""
    about = []
    for body in events(fake.received):
        data = body["data"]
        subject = (
            data.get("work_item", {}).get("key")
            or data.get("key_result", {}).get("title")
            or data.get("team", {}).get("key")
            or data.get("sync_run", {}).get("status")
            or ""
        )
        about.append((body["type"], subject))
    return about


def unlinked_epics(fake: Receiver) -> list[str]:
    return sorted(key for kind, key in kinds(fake) if kind == "epic.unlinked")


async def test_a_first_sync_announces_each_unlinked_epic_once_and_a_resync_nothing(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> None:
    fake, url = receiver
    made = await endpoint(admin, url)
    world = await build(admin, tracker)
    assert unlinked_epics(fake) == ["PAY-E1", "PLT-E2"]
    assert ("sync.completed", "succeeded") in kinds(fake)
    unlinked = events(fake.received, "epic.unlinked")
    item = unlinked[0]["data"]["work_item"]
    assert {"id", "key", "title", "kind", "status_category", "team", "category"} <= item.keys()
    assert item["kind"] == "epic"
    for received in fake.received:
        verified(received, made["secret"])
    before = len(fake.received)
    await world.resync(admin)
    await world.resync(admin, "full")
    assert [k for k, _ in kinds(fake)[before:]] == ["sync.completed", "sync.completed"]


async def test_linking_announces_epic_linked_and_losing_the_last_link_unlinked_again(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> None:
    fake, url = receiver
    await endpoint(admin, url, event_types=["epic.linked", "epic.unlinked"])
    world = await build(admin, tracker)
    fake.received.clear()
    made = await link(admin, world.krs["revenue"], "PAY-E1")
    second = await link(admin, world.krs["conversion"], "PAY-E1")
    assert kinds(fake) == [("epic.linked", "PAY-E1")]
    assert (await admin.delete(f"/v1/links/{made['id']}")).status_code == 204
    assert kinds(fake) == [("epic.linked", "PAY-E1")]  # still linked to one KR
    assert (await admin.delete(f"/v1/links/{second['id']}")).status_code == 204
    assert kinds(fake) == [("epic.linked", "PAY-E1"), ("epic.unlinked", "PAY-E1")]


async def test_an_epic_closed_before_its_grace_period_ends_is_never_announced(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker, app: Any, database: Database
) -> None:
    fake, url = receiver
    app.state.services.settings = app.state.services.settings.model_copy(
        update={"unlinked_grace_hours": 24}
    )
    await endpoint(admin, url, event_types=["epic.unlinked"])
    world = await build(admin, tracker)
    assert unlinked_epics(fake) == []
    # A day passes for PLT-E2; PAY-E1 is closed in the meantime.
    async with database.transaction() as session:
        watches = (await session.exec(select(EpicWatch))).all()
        assert len(watches) == 2
        for watch in watches:
            watch.unlinked_since -= timedelta(hours=25)
            session.add(watch)
    tracker.touch("E1", state="done", finished=datetime.now(UTC).isoformat())
    await world.resync(admin)
    assert unlinked_epics(fake) == ["PLT-E2"]
    await scan(app)
    assert unlinked_epics(fake) == ["PLT-E2"]


@pytest.fixture
async def filtered_world(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker, database: Database
) -> World:
    world = await build(admin, tracker)
    # Everything so far is history; start listening now, from payments' side only.
    async with database.transaction() as session:
        await session.exec(sa.delete(table_of(EpicWatch)))
    fake, url = receiver
    await endpoint(admin, url, team="payments")
    return world


async def test_team_filter(
    admin: httpx.AsyncClient, receiver: Served, filtered_world: World, app: Any
) -> None:
    fake, _ = receiver
    await scan(app)
    # PAY-E1 is payments'; PLT-E2 is platform's, outside the subtree.
    assert unlinked_epics(fake) == ["PAY-E1"]
    await filtered_world.resync(admin)
    # Events about no team reach every subscriber.
    assert kinds(fake)[-1] == ("sync.completed", "succeeded")


async def test_a_failed_sync_is_announced(
    admin: httpx.AsyncClient,
    receiver: Served,
    tracker: FakeTracker,  # noqa: ARG001 (serves)
) -> None:
    fake, url = receiver
    await endpoint(admin, url, event_types=["sync.failed", "sync.completed"])
    body = {
        "provider": "example", "name": "wrong-token",
        "config": {"base_url": "https://tracker.example"}, "credentials": {"token": "wrong"},
    }  # fmt: skip
    connection = (await admin.post("/v1/connections", json=body)).json()
    await admin.post(f"/v1/connections/{connection['id']}/sync", json={"mode": "full"})
    [failed] = events(fake.received)
    assert failed["type"] == "sync.failed"
    assert failed["data"]["sync_run"]["status"] == "failed"
    assert failed["data"]["sync_run"]["error"]
    assert failed["data"]["connection"]["name"] == "wrong-token"
    assert "wrong" not in failed["data"]["sync_run"]["error"].split()


async def test_progress_changes_are_announced_with_the_previous_value(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker, app: Any
) -> None:
    fake, url = receiver
    await endpoint(admin, url, event_types=["key_result.progress_changed"])
    world = await build(admin, tracker)
    assert events(fake.received) == []  # created KRs set a baseline, not a change
    kr = world.krs["revenue"]
    await admin.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 40})
    await admin.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 40})
    await admin.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 55})
    changed = events(fake.received)
    moves = [(e["data"]["previous_progress"], e["data"]["key_result"]["progress"]) for e in changed]
    assert moves == [(0.0, 0.4), (0.4, 0.55)]
    assert changed[0]["data"]["key_result"]["id"] == kr["id"]
    await scan(app)
    assert len(events(fake.received)) == 2


async def linked_to_epic(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> tuple[Receiver, World]:
    """The portfolio with its conversion KR's progress linked to PAY-E1's work, and a
    subscriber to progress changes."""
    fake, url = receiver
    await endpoint(admin, url, event_types=["key_result.progress_changed"])
    world = await build(admin, tracker)
    kr = await admin.patch(
        f"/v1/key-results/{world.krs['conversion']['id']}", json={"progress_mode": "linked"}
    )
    assert kr.status_code == 200
    await link(admin, world.krs["conversion"], "PAY-E1")
    # PAY-E1's live, non-canceled leaves: s1, s2, s3 done, s5 open: 3 of 4.
    assert events(fake.received)[-1]["data"]["key_result"]["progress"] == pytest.approx(0.75)
    return fake, world


async def test_linked_progress_moves_with_synced_work(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> None:
    fake, world = await linked_to_epic(admin, receiver, tracker)
    tracker.touch("s5", state="done", finished=datetime.now(UTC).isoformat())
    await world.resync(admin)
    last = events(fake.received)[-1]["data"]
    assert (last["previous_progress"], last["key_result"]["progress"]) == (0.75, 1.0)


async def test_a_sync_of_many_pages_announces_progress_once_from_before_to_after(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> None:
    fake, world = await linked_to_epic(admin, receiver, tracker)
    fake.received.clear()
    # One item a page: after s5's page the KR stands at 1.0, after s6's at 0.8.
    config = {"base_url": BASE_URL, "team_map": TEAM_MAP, "page_size": 1}
    changed = await admin.patch(f"/v1/connections/{world.connection_id}", json={"config": config})
    assert changed.status_code == 200, changed.text
    tracker.touch("s5", state="done", finished=datetime.now(UTC).isoformat())
    tracker.add("s6", key="PAY-s6", parent="E1", state="open", points=1)
    await world.resync(admin)
    moves = [
        (e["data"]["previous_progress"], e["data"]["key_result"]["progress"])
        for e in events(fake.received)
    ]
    # What the PMO asked about is the sync's outcome, not each page on the way there.
    assert moves == [(0.75, pytest.approx(0.8))]


async def test_a_team_dropping_below_its_target_is_announced_once_per_drop(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker
) -> None:
    fake, url = receiver
    await endpoint(admin, url, event_types=["team.strategic_share_below_target"])
    world = await build(admin, tracker)
    [below] = events(fake.received)
    assert below["data"]["team"]["key"] == "platform"
    assert (below["data"]["share"], below["data"]["target"]) == (0.0, 0.5)
    assert below["data"]["period"]["name"] == "2026-Q4"
    await world.resync(admin)
    assert len(events(fake.received)) == 1  # still below: no repeat
    # Platform's E2 (two of its three done leaves) now serves a KR: 2/3 strategic, recovered.
    recovered = await link(admin, world.krs["revenue"], "PLT-E2")
    assert len(events(fake.received)) == 1
    await admin.delete(f"/v1/links/{recovered['id']}")
    assert [e["data"]["share"] for e in events(fake.received)] == [0.0, 0.0]


async def test_stale_key_results_are_announced_once_per_silence(
    admin: httpx.AsyncClient, receiver: Served, tracker: FakeTracker, app: Any, database: Database
) -> None:
    fake, url = receiver
    await endpoint(admin, url, event_types=["key_result.stale"])
    world = await build(admin, tracker)
    kr = world.krs["revenue"]
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    await admin.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 10, "created_at": old})
    await scan(app)
    assert events(fake.received) == []  # the stale scan is the daily one
    await scan(app, stale=True)
    [stale] = events(fake.received)
    assert stale["data"]["key_result"]["title"] == "Revenue 10M"
    assert (stale["data"]["days"], stale["data"]["limit_days"]) == (30, 14)
    await scan(app, stale=True)
    assert len(events(fake.received)) == 1
    # A check-in ends the silence; a new one, as long, is announced again.
    await admin.post(f"/v1/key-results/{kr['id']}/check-ins", json={"value": 20})
    await scan(app, stale=True)
    assert len(events(fake.received)) == 1
    async with database.transaction() as session:  # fifteen days pass
        for check_in in (await session.exec(select(CheckIn))).all():
            check_in.created_at -= timedelta(days=15)
            session.add(check_in)
        for watch in (await session.exec(select(KeyResultWatch))).all():
            if watch.stale_notified_at is not None:
                watch.stale_notified_at -= timedelta(days=15)
                session.add(watch)
    await scan(app, stale=True)
    assert len(events(fake.received)) == 2


async def test_an_event_is_written_with_its_change_or_not_at_all(
    admin: httpx.AsyncClient, receiver: Served, app: Any, database: Database
) -> None:
    """The outbox row shares the transaction of its cause: a rollback takes both."""
    from service.webhooks import outbox
    from service.webhooks.events import EventType

    _, url = receiver
    await endpoint(admin, url)
    services = app.state.services
    written = []

    async def change_that_fails() -> None:
        async with services.unit_of_work() as session:
            event = outbox.Event(EventType.webhook_test, {"n": 1}, about_team=False)
            written.append(await outbox.emit(session, [event]))
            raise RuntimeError("the change fails after the event was written")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    assert written == [1]
    async with database.transaction() as session:
        assert (await session.exec(select(WebhookMessage))).all() == []
