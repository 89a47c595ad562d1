"""``/v1/webhook-endpoints``: secrets shown once, checked destinations, filters, rotation."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests import factories
from tests.conftest import assert_problem
from tests.webhooks.helpers import endpoint

URL = "https://hooks.example.com/okr"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shipped default: private destinations refused."""
    return Settings(data_dir=tmp_path, database_url="sqlite:///unused.db")


async def test_the_secret_is_shown_once_and_never_again(admin: httpx.AsyncClient) -> None:
    made = await endpoint(admin, URL, description="platform alerts")
    secret = made["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert made["enabled"] is True
    assert made["event_types"] == []
    for response in (
        await admin.get(f"/v1/webhook-endpoints/{made['id']}"),
        await admin.get("/v1/webhook-endpoints"),
        await admin.patch(f"/v1/webhook-endpoints/{made['id']}", json={"description": "x"}),
    ):
        assert response.status_code == 200
        assert secret not in response.text
        assert secret.removeprefix("whsec_") not in response.text
        assert "secret" not in response.json().get("items", [response.json()])[0]
    other = await endpoint(admin, URL)
    assert other["secret"] != secret


async def test_event_types_and_team_filter_are_validated(admin: httpx.AsyncClient) -> None:
    await factories.team(admin, "payments")
    made = await endpoint(
        admin, URL, event_types=["epic.unlinked", "epic.linked", "epic.unlinked"], team="payments"
    )
    assert made["event_types"] == ["epic.linked", "epic.unlinked"]
    assert made["team"] == "payments"
    bad_type = await admin.post(
        "/v1/webhook-endpoints", json={"url": URL, "event_types": ["epic.deleted"]}
    )
    assert_problem(bad_type, 422, "invalid-input")
    no_team = await admin.post("/v1/webhook-endpoints", json={"url": URL, "team": "nobody"})
    assert_problem(no_team, 422, "invalid-input")
    assert "nobody" in no_team.json()["detail"]
    # The filter's team cannot vanish from under it.
    payments = (await admin.get("/v1/teams/payments")).json()
    refused = await admin.delete(f"/v1/teams/{payments['id']}")
    assert_problem(refused, 409, "conflict")
    cleared = await admin.patch(f"/v1/webhook-endpoints/{made['id']}", json={"team": None})
    assert cleared.json()["team"] is None
    assert (await admin.delete(f"/v1/teams/{payments['id']}")).status_code == 204


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_loopback_and_link_local_destinations_are_refused(
    admin: httpx.AsyncClient, url: str
) -> None:
    response = await admin.post("/v1/webhook-endpoints", json={"url": url})
    assert_problem(response, 422, "invalid-input")
    assert "OKR_SYNC_ALLOW_PRIVATE_WEBHOOK_URLS" in response.json()["detail"]
    fine = await endpoint(admin, URL)
    moved = await admin.patch(f"/v1/webhook-endpoints/{fine['id']}", json={"url": url})
    assert_problem(moved, 422, "invalid-input")
    assert (await admin.get(f"/v1/webhook-endpoints/{fine['id']}")).json()["url"] == URL


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "/relative", "not a url", "http://"])
async def test_only_absolute_http_urls(admin: httpx.AsyncClient, url: str) -> None:
    assert_problem(
        await admin.post("/v1/webhook-endpoints", json={"url": url}), 422, "invalid-input"
    )


async def test_private_destinations_when_allowed(
    admin: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    app.state.services.settings = settings.model_copy(update={"allow_private_webhook_urls": True})
    made = await endpoint(admin, "http://127.0.0.1:9/hook")
    assert made["url"] == "http://127.0.0.1:9/hook"


async def test_rotation_returns_a_new_secret_and_keeps_the_old_for_a_day(
    admin: httpx.AsyncClient,
) -> None:
    made = await endpoint(admin, URL)
    rotated = await admin.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != made["secret"]
    shown = (await admin.get(f"/v1/webhook-endpoints/{made['id']}")).json()
    assert shown["secret_rotated_at"] is not None
    assert body["secret"] not in str(shown)


async def test_delete_and_missing(admin: httpx.AsyncClient) -> None:
    made = await endpoint(admin, URL)
    assert (await admin.delete(f"/v1/webhook-endpoints/{made['id']}")).status_code == 204
    assert_problem(await admin.get(f"/v1/webhook-endpoints/{made['id']}"), 404, "not-found")
    assert_problem(await admin.post(f"/v1/webhook-endpoints/{made['id']}/test"), 404, "not-found")
