"""Connection credentials and webhook secrets appear in no API response and no log line.

One test drives what touches them: a Jira Cloud connection checked and fully synced through
rate limits, server errors and a reset connection; a connection with wrong credentials; signed
and wrongly signed provider webhooks (one with the secret in its query, as Data Center sends
it); an outbound endpoint whose secret is rotated, with a delivery. Every log record of the
service at DEBUG, formatted as the service writes them with their extra fields, and every
API response but the two that show an endpoint's secret once, are searched for each secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.logs import handler
from service.settings import Settings
from tests import factories
from tests.fakes.jira import API_TOKEN, EMAIL, JiraSite, populate, serve
from tests.fakes.receiver import Receiver
from tests.fakes.serving import serving
from tests.sync.helpers import sync
from tests.upstream import UPSTREAM

HOOK_SECRET = "hook-secret-do-not-show-7f3a9c"
WRONG_TOKEN = "wrong-api-token-do-not-show-51e0"
JIRA_HOOKS = UPSTREAM / "jira" / "mattermost-webhooks"
CLIENT_BASE = "http://okr-sync.test"  # the tests' own client, whose httpx logs name its URLs


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The receiver listens on loopback.
    return Settings(data_dir=tmp_path, database_url="sqlite://", allow_private_webhook_urls=True)


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Every record, at DEBUG, as the service's JSON handler writes it (extras included)."""
    stream = io.StringIO()
    root = logging.getLogger()
    written = handler("json", stream)
    written.setLevel(logging.DEBUG)
    root.addHandler(written)
    try:
        yield stream
    finally:
        root.removeHandler(written)


def forms(secret: str) -> set[str]:
    """A secret as it could leak: itself, and inside a basic-auth header."""
    return {secret, base64.b64encode(f"{EMAIL}:{secret}".encode()).decode()}


async def test_no_secret_is_answered_or_logged(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, service_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)  # pytest holds the root at INFO during a test otherwise
    answers: list[httpx.Response] = []

    async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await admin.request(method, url, **kwargs)
        answers.append(response)
        return response

    site = JiraSite(cloud=True)
    populate(site, 300)
    receiver = Receiver()
    with serve(site) as jira_url, serving(receiver.app(), "receiver") as port:
        site.fail(6, (429, {"Retry-After": "0"}))
        site.fail(8, (503, {}))
        site.fail(10, "reset")

        async def jira_connection(name: str, api_token: str, **extra: Any) -> str:
            body = {"provider": "jira", "name": name, "config": {"url": jira_url},
                    "credentials": {"email": EMAIL, "api_token": api_token}} | extra  # fmt: skip
            return str((await factories.created(admin.post("/v1/connections", json=body)))["id"])

        connection = await jira_connection("jira", API_TOKEN, webhook_secret=HOOK_SECRET)
        assert (await call("POST", f"/v1/connections/{connection}/check")).json()["ok"]
        run = await sync(admin, connection, "full")
        assert run["status"] == "succeeded", run["error"]
        assert run["fetched"] == len(site.issues)

        wrong = await jira_connection("wrong", WRONG_TOKEN)
        assert not (await call("POST", f"/v1/connections/{wrong}/check")).json()["ok"]
        failed = await sync(admin, wrong, "full")
        assert failed["status"] == "failed"

        body = (
            UPSTREAM / "jira" / "mattermost-webhooks" / "webhook-issue-deleted.json"
        ).read_bytes()
        signature = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        for delivery, (headers, params) in enumerate((
            ({"X-Hub-Signature": signature}, {}),
            ({"X-Hub-Signature": "sha256=" + "0" * 64}, {}),
            ({}, {"secret": HOOK_SECRET}),  # Data Center: the secret in the URL
            ({}, {"secret": HOOK_SECRET[::-1]}),
        )):  # fmt: skip
            response = await anonymous.post(
                f"/hooks/{connection}", content=body, params=params,
                headers=headers | {"X-Atlassian-Webhook-Identifier": f"d-{delivery}"},
            )  # fmt: skip
            assert response.status_code in (202, 401), response.text
            answers.append(response)

        endpoint = await factories.created(
            admin.post("/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{port}/hooks"})
        )
        rotated = await admin.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        endpoint_secrets = {endpoint["secret"], rotated.json()["secret"]}
        assert (await call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/test")).is_success
        assert receiver.received, "the test event was not delivered"

        for url in (
            "/v1/connections", f"/v1/connections/{connection}", f"/v1/connections/{wrong}",
            f"/v1/connections/{connection}/sync-runs", f"/v1/sync-runs/{run['id']}",
            f"/v1/sync-runs/{failed['id']}", "/v1/webhook-endpoints",
            f"/v1/webhook-endpoints/{endpoint['id']}",
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", "/v1/work-items", "/v1/tokens",
        ):  # fmt: skip
            assert (await call("GET", url)).status_code == 200, url

    secrets = forms(API_TOKEN) | forms(WRONG_TOKEN) | {HOOK_SECRET}
    # An endpoint's secret, and the key inside it (whsec_<base64 key>).
    secrets |= endpoint_secrets | {s.removeprefix("whsec_") for s in endpoint_secrets}
    for response in answers:
        leaked = [s for s in secrets if s in response.text or s in str(response.headers)]
        assert not leaked, f"{response.request.method} {response.request.url} answered {leaked}"
    lines = [
        line for line in service_log.getvalue().splitlines() if CLIENT_BASE not in line
    ]  # the test client's own httpx lines name the URLs it was asked to send
    assert len(lines) > 50, "the log capture caught too little to mean anything"
    for line in lines:
        leaked = [s for s in secrets if s in line]
        assert not leaked, f"a log line holds {leaked}: {line}"
