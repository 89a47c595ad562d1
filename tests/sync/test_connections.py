"""The connections API, with the example connector plugin installed."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlmodel import select

from service.db import Database
from service.models import Connection
from tests.conftest import assert_problem
from tests.sync.helpers import connect
from tests.tracker import BASE_URL, TOKEN, FakeTracker


def connection_request(**overrides: object) -> dict[str, object]:
    """A valid request to connect the example tracker, with some fields replaced."""
    return {
        "provider": "example",
        "name": "tracker",
        "config": {"base_url": BASE_URL},
        "credentials": {"token": TOKEN},
    } | overrides


class TestCreateConnection:
    async def test_credentials_are_stored_encrypted_and_never_returned(
        self, admin: httpx.AsyncClient, database: Database
    ) -> None:
        response = await admin.post(
            "/v1/connections",
            json=connection_request(webhook_secret="a-webhook-secret-of-some-length"),
        )
        assert response.status_code == 201, response.text
        made = response.json()
        assert made["config"] == {"base_url": BASE_URL, "team_map": {}, "page_size": 50}
        assert made["webhook_secret"] is None  # given, so not echoed
        for text in (
            response.text,
            (await admin.get(f"/v1/connections/{made['id']}")).text,
            (await admin.get("/v1/connections")).text,
        ):
            assert TOKEN not in text
            assert "a-webhook-secret" not in text
            assert "credentials" not in text
        async with database.sessionmaker() as session:
            row = (await session.exec(select(Connection))).one()
        assert TOKEN not in row.credentials_encrypted
        assert "a-webhook-secret" not in (row.webhook_secret_encrypted or "")

    async def test_a_generated_webhook_secret_is_shown_once(self, admin: httpx.AsyncClient) -> None:
        made = (
            await admin.post(
                "/v1/connections",
                json={
                    "provider": "example",
                    "name": "tracker",
                    "config": {"base_url": BASE_URL},
                    "credentials": {"token": TOKEN},
                },
            )
        ).json()
        assert len(made["webhook_secret"]) >= 32
        again = (await admin.get(f"/v1/connections/{made['id']}")).json()
        assert "webhook_secret" not in again

    async def test_config_is_validated_by_the_connectors_own_model(
        self, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.post(
            "/v1/connections",
            json=connection_request(config={"base_url": "ftp://nope", "page_size": 0}),
        )
        body = assert_problem(response, 422, "invalid-input")
        locs = sorted(tuple(e["loc"]) for e in body["errors"])
        assert locs == [("body", "config", "base_url"), ("body", "config", "page_size")]

    async def test_invalid_credentials_are_reported_without_echoing_them(
        self, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.post(
            "/v1/connections",
            json=connection_request(credentials={"token": ["s3cr3t-in-a-list"]}),
        )
        body = assert_problem(response, 422, "invalid-input")
        assert body["errors"][0]["loc"] == ["body", "credentials", "token"]
        assert "s3cr3t" not in response.text

    async def test_unknown_provider_names_the_installed_ones(
        self, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.post(
            "/v1/connections",
            json={"provider": "asana", "name": "x", "config": {}, "credentials": {}},
        )
        body = assert_problem(response, 422, "invalid-input")
        assert "example" in body["detail"]

    async def test_duplicate_name_is_a_conflict(self, admin: httpx.AsyncClient) -> None:
        await connect(admin, "tracker")
        response = await admin.post(
            "/v1/connections",
            json=connection_request(),
        )
        assert_problem(response, 409, "conflict")


class TestConnectionLifecycle:
    @pytest.mark.usefixtures("tracker")
    async def test_check_reports_whether_the_credentials_work(
        self, admin: httpx.AsyncClient
    ) -> None:
        connection_id = await connect(admin)
        assert (await admin.post(f"/v1/connections/{connection_id}/check")).json() == {
            "ok": True,
            "error": None,
        }
        await admin.patch(f"/v1/connections/{connection_id}", json={"credentials": {"token": "x"}})
        failed = (await admin.post(f"/v1/connections/{connection_id}/check")).json()
        assert failed["ok"] is False
        assert failed["error"].startswith("AuthFailed")

    async def test_named_by_name_in_paths_and_deleted_with_its_items(
        self, admin: httpx.AsyncClient, tracker: FakeTracker
    ) -> None:
        tracker.add("1")
        connection_id = await connect(admin, "tracker")
        await admin.post(f"/v1/connections/{connection_id}/sync", json={"mode": "full"})
        assert (await admin.get("/v1/connections/tracker")).json()["id"] == connection_id
        assert (await admin.get("/v1/work-items/PAY-1")).status_code == 200
        assert (await admin.delete("/v1/connections/tracker")).status_code == 204
        assert_problem(await admin.get("/v1/work-items/PAY-1"), 404, "not-found")

    @pytest.mark.parametrize("field", ["name", "config", "credentials"])
    async def test_null_for_a_required_field_is_refused(
        self, admin: httpx.AsyncClient, field: str
    ) -> None:
        connection_id = await connect(admin)
        response = await admin.patch(f"/v1/connections/{connection_id}", json={field: None})
        assert_problem(response, 422, "invalid-input")

    async def test_unknown_connection_is_404(self, admin: httpx.AsyncClient) -> None:
        assert_problem(await admin.get(f"/v1/connections/{uuid.uuid4()}"), 404, "not-found")
        assert_problem(await admin.post("/v1/connections/nope/sync", json={}), 404, "not-found")
