"""Provider webhooks verified and parsed by the connectors, on the providers' real payloads
signed as each provider signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest

from connectors import BadSignature
from connectors.github import GitHubConfig, GitHubConnector, GitHubCredentials
from connectors.jira import JiraConfig, JiraConnector, JiraCredentials
from connectors.jira_csv import JiraCsvConfig, JiraCsvConnector, NoCredentials
from connectors.linear import LinearConfig, LinearConnector, LinearCredentials
from connectors.webhooks import WebhookAction, WebhookRequest
from tests.upstream import UPSTREAM

SECRET = "whsec-test-0123456789abcdef"
GITHUB_EXAMPLES = sorted((UPSTREAM / "github" / "webhooks" / "examples").glob("*.json"))
LINEAR_EXAMPLES = sorted((UPSTREAM / "linear" / "webhooks").glob("*.json"))
JIRA_EXAMPLES = sorted((UPSTREAM / "jira" / "mattermost-webhooks").glob("*.json"))[:6]


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def http() -> httpx.AsyncClient:
    return httpx.AsyncClient()


def github(http: httpx.AsyncClient) -> GitHubConnector:
    config = GitHubConfig(
        repos=["Codertocat/Hello-World"], team_map={"codertocat/hello-world": "web"}
    )
    return GitHubConnector(config=config, credentials=GitHubCredentials(token="t"), http=http)


def github_request(path: Path, **headers: str) -> WebhookRequest:
    body = path.read_bytes()
    event = path.name.split(".")[0]
    return WebhookRequest(
        headers={"x-hub-signature-256": "sha256=" + sign(body), "x-github-event": event,
                 "x-github-delivery": f"delivery-{path.stem}"} | headers,
        body=body,
    )  # fmt: skip


class TestGitHub:
    @pytest.mark.parametrize("path", GITHUB_EXAMPLES, ids=lambda p: p.stem)
    def test_every_example_verifies_and_a_changed_byte_does_not(
        self, http: httpx.AsyncClient, path: Path
    ) -> None:
        connector = github(http)
        request = github_request(path)
        connector.verify_webhook(request, SECRET)
        tampered = WebhookRequest(
            headers=request.headers, body=request.body.replace(b"}", b" }", 1)
        )
        with pytest.raises(BadSignature):
            connector.verify_webhook(tampered, SECRET)
        with pytest.raises(BadSignature):
            connector.verify_webhook(request, "another-secret")
        unsigned = WebhookRequest(headers={"x-github-event": "issues"}, body=request.body)
        with pytest.raises(BadSignature):
            connector.verify_webhook(unsigned, SECRET)

    def test_issue_events_become_items_and_deletions(self, http: httpx.AsyncClient) -> None:
        connector = github(http)
        folder = UPSTREAM / "github" / "webhooks" / "examples"
        opened = connector.parse_webhook(github_request(folder / "issues.opened.json"))
        assert (opened.action, opened.delivery_id) == (
            WebhookAction.upsert,
            "delivery-issues.opened",
        )
        (item,) = opened.items
        raw = json.loads((folder / "issues.opened.json").read_text())["issue"]
        assert (item.external_id, item.key) == (
            str(raw["id"]),
            f"Codertocat/Hello-World#{raw['number']}",
        )
        assert item.team_key == "web"
        deleted = connector.parse_webhook(github_request(folder / "issues.deleted.json"))
        assert deleted.action == WebhookAction.delete
        assert deleted.deleted == (
            str(json.loads((folder / "issues.deleted.json").read_text())["issue"]["id"]),
        )
        assert connector.parse_webhook(github_request(folder / "ping.json")).action == "ping"
        milestone = connector.parse_webhook(github_request(folder / "milestone.created.json"))
        assert milestone.action == WebhookAction.ignore

    @pytest.mark.parametrize(("action", "parent"), [
        ("sub_issue_added", "Codertocat/Hello-World#1"),
        ("parent_issue_added", "Codertocat/Hello-World#1"),
        ("sub_issue_removed", None),
        ("parent_issue_removed", None),
    ])  # fmt: skip
    def test_sub_issue_events_set_or_clear_the_parent(
        self, http: httpx.AsyncClient, action: str, parent: str | None
    ) -> None:
        folder = UPSTREAM / "github" / "webhooks" / "examples"
        child = json.loads((folder / "issues.opened.json").read_text())["issue"]
        child["parent_issue_url"] = "https://api.github.com/repos/Codertocat/Hello-World/issues/1"
        parent_issue = dict(child, id=99, number=1)
        payload = {"action": action, "sub_issue": child, "parent_issue": parent_issue,
                   "sub_issue_id": child["id"], "parent_issue_id": 99}  # fmt: skip
        body = json.dumps(payload).encode()
        request = WebhookRequest(
            headers={"x-hub-signature-256": "sha256=" + sign(body), "x-github-event": "sub_issues",
                     "x-github-delivery": "d1"}, body=body,
        )  # fmt: skip
        connector = github(http)
        connector.verify_webhook(request, SECRET)
        (item,) = connector.parse_webhook(request).items
        assert item.parent_key == parent


class TestLinear:
    @pytest.mark.parametrize("path", LINEAR_EXAMPLES, ids=lambda p: p.stem)
    def test_real_deliveries_verify_within_a_minute_of_their_timestamp(
        self, http: httpx.AsyncClient, path: Path
    ) -> None:
        connector = LinearConnector(
            config=LinearConfig(teams=["WEB"]),
            credentials=LinearCredentials(api_key="k"),
            http=http,
        )
        body = path.read_bytes()
        sent = json.loads(body)["webhookTimestamp"] / 1000
        headers = {"linear-signature": sign(body), "linear-delivery": "d1"}
        connector.verify_webhook(WebhookRequest(headers, body, received_at=sent + 30), SECRET)
        for late in (sent + 61, sent - 61):  # a replay, or a clock far off
            with pytest.raises(BadSignature, match="timestamp"):
                connector.verify_webhook(WebhookRequest(headers, body, received_at=late), SECRET)
        with pytest.raises(BadSignature, match="Linear-Signature"):
            connector.verify_webhook(
                WebhookRequest({"linear-signature": sign(body, "other")}, body, received_at=sent),
                SECRET,
            )

    def test_the_timestamp_header_serves_when_the_body_has_none(
        self, http: httpx.AsyncClient
    ) -> None:
        connector = LinearConnector(
            config=LinearConfig(teams=["WEB"]),
            credentials=LinearCredentials(api_key="k"),
            http=http,
        )
        body = b'{"type": "Issue", "action": "update", "data": {}}'
        headers = {"linear-signature": sign(body), "linear-timestamp": "1700000000000"}
        connector.verify_webhook(WebhookRequest(headers, body, received_at=1_700_000_010), SECRET)
        with pytest.raises(BadSignature):
            connector.verify_webhook(
                WebhookRequest({"linear-signature": sign(body)}, body, received_at=1_700_000_010),
                SECRET,
            )


class TestJira:
    @pytest.mark.parametrize("path", JIRA_EXAMPLES, ids=lambda p: p.stem)
    def test_cloud_signatures_and_data_center_query_secrets(
        self, http: httpx.AsyncClient, path: Path
    ) -> None:
        connector = JiraConnector(
            config=JiraConfig(url="https://jira.test"),
            credentials=JiraCredentials(token="pat"),
            http=http,
        )
        body = path.read_bytes()
        connector.verify_webhook(
            WebhookRequest({"x-hub-signature": "sha256=" + sign(body)}, body), SECRET
        )
        connector.verify_webhook(WebhookRequest({}, body, query={"secret": SECRET}), SECRET)
        for wrong in (
            WebhookRequest({"x-hub-signature": "sha256=" + sign(body, "other")}, body),
            # A signature header that fails is not rescued by a query secret.
            WebhookRequest({"x-hub-signature": "sha256=00"}, body, query={"secret": SECRET}),
            WebhookRequest({}, body, query={"secret": "guess"}),
            WebhookRequest({}, body),
        ):
            with pytest.raises(BadSignature):
                connector.verify_webhook(wrong, SECRET)


def test_a_connector_without_webhooks_refuses_every_request(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    connector = JiraCsvConnector(
        config=JiraCsvConfig(path=str(tmp_path / "x.csv")), credentials=NoCredentials(), http=http
    )
    request = WebhookRequest({}, b"{}")
    with pytest.raises(BadSignature, match="take no webhooks"):
        connector.verify_webhook(request, SECRET)
    with pytest.raises(BadSignature, match="take no webhooks"):
        connector.parse_webhook(request)
