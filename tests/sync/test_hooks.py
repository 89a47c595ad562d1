"""``POST /hooks/{connection_id}``: the providers' real payloads, signed as each provider
signs them, sent to the app; items stored, deleted or re-synced by the job."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from service.app import create_app
from service.connections import service as connections
from service.connections.schemas import ConnectionCreate
from service.db import Database
from service.hooks import service as hooks
from service.migrate import upgrade
from service.models import InboundWebhook, SyncRun, WorkItem
from service.services import Services, open_services
from service.settings import Settings
from service.sync import store
from service.worker.inprocess import InProcessQueue
from tests import factories
from tests.conftest import fresh_postgres_database
from tests.fakes.linear import API_KEY, LinearSite, populate, serve
from tests.upstream import UPSTREAM

SECRET = "whsec-local-0123456789abcdef"
GITHUB = UPSTREAM / "github" / "webhooks" / "examples"
LINEAR = UPSTREAM / "linear" / "webhooks"
JIRA = UPSTREAM / "jira" / "mattermost-webhooks"


def hex_hmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def connection(admin: httpx.AsyncClient, provider: str, config: dict[str, Any]) -> str:
    credentials = {
        "github": {"token": "t"},
        "linear": {"api_key": API_KEY},
        "jira": {"token": "pat"},
    }[provider]
    body = {"provider": provider, "name": f"{provider}-hooks", "config": config,
            "credentials": credentials, "webhook_secret": SECRET}  # fmt: skip
    return str((await factories.created(admin.post("/v1/connections", json=body)))["id"])


async def github_hook(
    client: httpx.AsyncClient, connection_id: str, path: Path, *, delivery: str | None = None,
    secret: str = SECRET,
) -> httpx.Response:  # fmt: skip
    body = path.read_bytes()
    return await client.post(
        f"/hooks/{connection_id}",
        content=body,
        headers={
            "X-GitHub-Event": path.name.split(".")[0],
            "X-GitHub-Delivery": delivery or f"d-{path.stem}",
            "X-Hub-Signature-256": "sha256=" + hex_hmac(body, secret),
            "Content-Type": "application/json",
        },
    )


async def items(database: Database, connection_id: str) -> dict[str, WorkItem]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            select(WorkItem).where(col(WorkItem.connection_id) == uuid.UUID(connection_id))
        )
        return {item.key: item for item in rows.all()}


async def deliveries(database: Database, connection_id: str) -> list[InboundWebhook]:
    async with database.sessionmaker() as session:
        rows = await session.exec(
            select(InboundWebhook).where(
                col(InboundWebhook.connection_id) == uuid.UUID(connection_id)
            )
        )
        return list(rows.all())


class TestGitHub:
    @pytest.fixture
    async def github(self, admin: httpx.AsyncClient) -> str:
        config = {"repos": ["Codertocat/Hello-World"], "api_url": "http://127.0.0.1:9"}
        return await connection(admin, "github", config)

    async def test_an_issue_event_is_stored_once_and_a_deletion_marks_it_deleted(
        self, anonymous: httpx.AsyncClient, github: str, database: Database
    ) -> None:
        opened = await github_hook(anonymous, github, GITHUB / "issues.opened.json")
        assert (opened.status_code, opened.json()) == (202, {"outcome": "accepted"})
        stored = (await items(database, github))["Codertocat/Hello-World#1"]
        assert (stored.status_category, stored.deleted_at) == ("todo", None)
        # The provider retries with the same delivery id: dropped, applied once.
        again = await github_hook(anonymous, github, GITHUB / "issues.opened.json")
        assert (again.status_code, again.json()) == (202, {"outcome": "duplicate"})
        assert len(await deliveries(database, github)) == 1

        deleted = await github_hook(anonymous, github, GITHUB / "issues.deleted.json")
        assert deleted.status_code == 202
        assert (await items(database, github))["Codertocat/Hello-World#1"].deleted_at is not None
        assert {d.status for d in await deliveries(database, github)} == {"processed"}

    async def test_a_burst_waiting_in_the_queue_is_applied_in_the_order_received(
        self, anonymous: httpx.AsyncClient, github: str, database: Database, app: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        """Opened, deleted, then opened again (a new delivery), all stored before the job
        runs: one run applies them in order, so the issue ends up live."""
        from service.hooks.service import process

        services = app.state.services
        asked: list[str] = []

        async def parked(job: str, *args: Any) -> None:
            asked.append(":".join([job, *args]))

        monkeypatch.setattr(services.queue, "enqueue", parked)
        for path, delivery in (("issues.opened.json", "a"), ("issues.deleted.json", "b"),
                               ("issues.edited.json", "c")):  # fmt: skip
            assert (
                await github_hook(anonymous, github, GITHUB / path, delivery=delivery)
            ).status_code == 202
        assert asked == ["process_webhooks"] * 3
        assert await items(database, github) == {}
        assert await process(services) == 3
        stored = (await items(database, github))["Codertocat/Hello-World#1"]
        assert stored.deleted_at is None
        assert {d.status for d in await deliveries(database, github)} == {"processed"}
        assert await process(services) == 0

    async def test_ping_is_answered_and_other_events_are_stored_as_ignored(
        self, anonymous: httpx.AsyncClient, github: str, database: Database
    ) -> None:
        ping = await github_hook(anonymous, github, GITHUB / "ping.json")
        assert (ping.status_code, ping.json()) == (200, {"outcome": "ping"})
        milestone = await github_hook(anonymous, github, GITHUB / "milestone.created.json")
        assert (milestone.status_code, milestone.json()) == (202, {"outcome": "ignored"})
        assert [d.status for d in await deliveries(database, github)] == ["ignored"]
        assert await items(database, github) == {}

    async def test_bad_signatures_unknown_connections_and_big_bodies_are_refused(
        self, anonymous: httpx.AsyncClient, github: str, database: Database
    ) -> None:
        wrong = await github_hook(anonymous, github, GITHUB / "issues.opened.json", secret="x")
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["type"] == "/problems/invalid-signature"
        unsigned = await anonymous.post(
            f"/hooks/{github}", content=(GITHUB / "issues.opened.json").read_bytes(),
            headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d9"},
        )  # fmt: skip
        assert unsigned.status_code == 401
        unknown = await github_hook(anonymous, str(uuid.uuid4()), GITHUB / "issues.opened.json")
        assert unknown.status_code == 404
        big = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
        too_big = await anonymous.post(
            f"/hooks/{github}", content=big,
            headers={"X-Hub-Signature-256": "sha256=" + hex_hmac(big), "X-GitHub-Event": "issues"},
        )  # fmt: skip
        assert too_big.status_code == 413
        assert too_big.json()["type"] == "/problems/payload-too-large"
        assert await deliveries(database, github) == []
        assert await items(database, github) == {}

    async def test_an_edited_or_deleted_connection_is_read_anew_by_its_next_delivery(
        self, anonymous: httpx.AsyncClient, admin: httpx.AsyncClient, github: str,
        database: Database,
    ) -> None:  # fmt: skip
        """The API keeps what receives a connection's webhooks (its connector and secret)
        between deliveries: a rotated secret counts from the next delivery on."""
        opened = GITHUB / "issues.opened.json"
        assert (await github_hook(anonymous, github, opened, delivery="1")).status_code == 202
        rotated = "whsec-rotated-fedcba9876543210"
        patched = await admin.patch(f"/v1/connections/{github}", json={"webhook_secret": rotated})
        assert patched.status_code == 200
        stale = await github_hook(anonymous, github, opened, delivery="2")
        assert stale.status_code == 401
        fresh = await github_hook(anonymous, github, opened, delivery="3", secret=rotated)
        assert (fresh.status_code, fresh.json()) == (202, {"outcome": "accepted"})
        assert sorted(d.delivery_id for d in await deliveries(database, github)) == ["1", "3"]

        assert (await admin.delete(f"/v1/connections/{github}")).status_code == 204
        gone = await github_hook(anonymous, github, opened, delivery="4", secret=rotated)
        assert gone.status_code == 404
        assert gone.json()["type"] == "/problems/not-found"


class TestLinear:
    @pytest.fixture
    def site(self) -> LinearSite:
        made = LinearSite()
        populate(made, ("WEB",), 30)
        return made

    @pytest.fixture
    def linear_url(self, site: LinearSite) -> Iterator[str]:
        with serve(site) as url:
            yield url

    async def test_a_change_starts_an_incremental_sync_and_a_removal_deletes(
        self, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, database: Database,
        site: LinearSite, linear_url: str,
    ) -> None:  # fmt: skip
        linear = await connection(admin, "linear", {"api_url": linear_url, "teams": ["WEB"]})
        # A real delivery, stamped now: Linear refuses anything older than a minute.
        payload = json.loads((LINEAR / "issue_update.json").read_text())
        payload["webhookTimestamp"] = int(time.time() * 1000)
        body = json.dumps(payload).encode()
        headers = {"Linear-Signature": hex_hmac(body), "Linear-Delivery": "l-1",
                   "Content-Type": "application/json"}  # fmt: skip
        response = await anonymous.post(f"/hooks/{linear}", content=body, headers=headers)
        assert (response.status_code, response.json()) == (202, {"outcome": "accepted"})
        async with database.sessionmaker() as session:
            runs = (await session.exec(select(SyncRun))).all()
        assert [(r.mode, r.status) for r in runs] == [("incremental", "succeeded")]
        stored = await items(database, linear)
        assert len(stored) == len(site.issues) + len(site.projects) + len(site.initiatives)

        gone_id = next(iter(site.issues))
        removal = json.loads((LINEAR / "issue_remove.json").read_text())
        removal["webhookTimestamp"] = int(time.time() * 1000)
        removal["data"]["id"] = gone_id
        body = json.dumps(removal).encode()
        headers = {"Linear-Signature": hex_hmac(body), "Linear-Delivery": "l-2"}
        assert (
            await anonymous.post(f"/hooks/{linear}", content=body, headers=headers)
        ).status_code == 202
        async with database.sessionmaker() as session:
            deleted = await session.exec(
                select(WorkItem.deleted_at).where(col(WorkItem.external_id) == gone_id)
            )
            assert deleted.one() is not None

        stale = json.loads((LINEAR / "issue_update.json").read_text())  # its own 2023 stamp
        body = json.dumps(stale).encode()
        headers = {"Linear-Signature": hex_hmac(body), "Linear-Delivery": "l-3"}
        refused = await anonymous.post(f"/hooks/{linear}", content=body, headers=headers)
        assert refused.status_code == 401


class TestJira:
    async def test_data_center_deliveries_carry_the_secret_in_the_query(
        self, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, database: Database
    ) -> None:
        jira = await connection(admin, "jira", {"url": "http://127.0.0.1:9"})
        body = (JIRA / "webhook-issue-deleted.json").read_bytes()
        headers = {"X-Atlassian-Webhook-Identifier": "j-1", "Content-Type": "application/json"}
        wrong = await anonymous.post(f"/hooks/{jira}?secret=guess", content=body, headers=headers)
        assert wrong.status_code == 401
        right = await anonymous.post(
            f"/hooks/{jira}?secret={SECRET}", content=body, headers=headers
        )
        assert (right.status_code, right.json()) == (202, {"outcome": "accepted"})
        assert [d.status for d in await deliveries(database, jira)] == ["processed"]
        async with database.sessionmaker() as session:
            count = await session.exec(select(sa.func.count()).select_from(SyncRun))
            assert count.one() == 0  # a deletion needs no sync


@pytest.mark.postgres
async def test_workers_applying_batches_of_several_connections_do_not_deadlock(
    own_database: tuple[Database, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each connection's items are written under that connection's lock; two workers whose
    batches name two connections in opposite orders must not wait on each other for ever
    (PostgreSQL would break the cycle by failing one of them)."""
    database, settings = own_database
    async with open_services(settings, queue=InProcessQueue(), database=database) as services:
        first, second = [await github_connection(services, name) for name in ("hooks-a", "hooks-b")]
        body = (GITHUB / "issues.opened.json").read_bytes()
        headers = {"x-github-event": "issues", "content-type": "application/json"}
        async with database.transaction() as session:
            # Received in this order: a worker taking two gets (first, second), the
            # next worker (second, first).
            for n, connection_id in enumerate((first, second, second, first)):
                session.add(
                    InboundWebhook(
                        connection_id=connection_id, delivery_id=f"d{n}", body=body,
                        headers=headers | {"x-github-delivery": f"d{n}"},
                        received_at=datetime(2026, 12, 1, 9, n, tzinfo=UTC),
                    )
                )  # fmt: skip
        monkeypatch.setattr(hooks, "BATCH", 2)
        stored_once = asyncio.Event()
        real_store = store.store_items

        async def slow_store(*args: Any, **kwargs: Any) -> dict[str, int]:
            counts = await real_store(*args, **kwargs)
            stored_once.set()
            await asyncio.sleep(0.3)  # hold this connection's lock a while
            return counts

        monkeypatch.setattr(store, "store_items", slow_store)

        async def late() -> int:
            await stored_once.wait()  # the first worker holds its batch and a lock
            return await hooks.process(services)

        done = await asyncio.wait_for(asyncio.gather(hooks.process(services), late()), timeout=20)
        assert sum(done) == 4  # every delivery applied once, by one worker or the other
        async with database.sessionmaker() as session:
            statuses = (await session.exec(select(InboundWebhook.status))).all()
            assert sorted(statuses) == ["processed"] * 4
            live = (await session.exec(select(WorkItem.connection_id))).all()
            assert sorted(live) == sorted([first, second])


@pytest.fixture
async def own_database(tmp_path: Path) -> AsyncIterator[tuple[Database, Settings]]:
    """A fresh, migrated PostgreSQL database of the test's own, not the shared rolled-back
    connection: jobs here run at once on connections of their own."""
    url, drop = await fresh_postgres_database()
    database = Database.from_url(url)
    try:
        await upgrade(database.engine)
        yield database, Settings(data_dir=tmp_path, database_url=url)
    finally:
        await database.dispose()
        await drop()


async def github_connection(services: Services, name: str) -> uuid.UUID:
    async with services.db.transaction() as session:
        data = ConnectionCreate(
            provider="github", name=name, config={"repos": ["Codertocat/Hello-World"]},
            credentials={"token": "t"}, webhook_secret=SECRET,
        )  # fmt: skip
        made = await connections.create(
            session=session, registry=services.registry, vault=services.vault, data=data
        )
        return made.id


@pytest.mark.postgres
async def test_a_delivery_whose_job_was_lost_is_applied_once_a_server_starts(
    own_database: tuple[Database, Settings],
) -> None:
    """A server stored a delivery and answered, then died before its job ran: the next
    server to start applies it (and a periodic sweep would, in a running one)."""
    database, settings = own_database
    async with open_services(settings, queue=InProcessQueue(), database=database) as services:
        connection_id = await github_connection(services, "lost-job")
    body = (GITHUB / "issues.opened.json").read_bytes()
    async with database.transaction() as session:
        session.add(
            InboundWebhook(
                connection_id=connection_id, delivery_id="lost", body=body,
                headers={"x-github-event": "issues", "x-github-delivery": "lost",
                         "content-type": "application/json"},
            )
        )  # fmt: skip
    restarted = create_app(settings, database=database, queue=InProcessQueue())
    async with restarted.router.lifespan_context(restarted):
        for _ in range(100):  # bounded: 10 s
            async with database.sessionmaker() as session:
                row = (await session.exec(select(InboundWebhook))).one()
            if row.status != "queued":
                break
            await asyncio.sleep(0.1)
    assert row.status == "processed"
    async with database.sessionmaker() as session:
        keys = (await session.exec(select(WorkItem.key))).all()
    assert keys == ["Codertocat/Hello-World#1"]
