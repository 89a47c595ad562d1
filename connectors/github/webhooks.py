"""GitHub webhooks: ``X-Hub-Signature-256`` on the raw body; ``issues`` and ``sub_issues``
events become work items, ``ping`` is answered, the rest is ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.github.mapping import issue_key, normalize, repo_of
from connectors.webhooks import (
    WebhookAction,
    WebhookEvent,
    WebhookRequest,
    hmac_hex,
    json_object,
    require_equal,
)

ADDED = frozenset({"sub_issue_added", "parent_issue_added"})


def verify(request: WebhookRequest, secret: str) -> None:
    expected = "sha256=" + hmac_hex(secret, request.body)
    require_equal(request.header("x-hub-signature-256"), expected, "X-Hub-Signature-256")


def parse(
    request: WebhookRequest, *, team_map: Mapping[str, str], epic_labels: Iterable[str]
) -> WebhookEvent:
    delivery = request.header("x-github-delivery") or ""
    event = request.header("x-github-event")
    if event == "ping":
        return WebhookEvent(delivery, WebhookAction.ping)
    payload = json_object(request.body)
    labels = list(epic_labels)
    if event == "issues":
        issue = payload["issue"]
        if payload.get("action") == "deleted":
            return WebhookEvent(delivery, WebhookAction.delete, deleted=(str(issue["id"]),))
        item = normalize(issue, team_map=team_map, epic_labels=labels)
        return WebhookEvent(delivery, WebhookAction.upsert, items=(item,))
    if event == "sub_issues":
        child, parent = payload["sub_issue"], payload["parent_issue"]
        if payload.get("action") in ADDED:
            parent_key = issue_key(repo_of(parent), parent["number"])
            item = normalize(child, team_map=team_map, epic_labels=labels, parent_key=parent_key)
        else:  # removed: whatever the copy of the child still says, it has no parent now
            detached = dict(child, parent_issue_url=None)
            item = normalize(detached, team_map=team_map, epic_labels=labels)
        return WebhookEvent(delivery, WebhookAction.upsert, items=(item,))
    return WebhookEvent(delivery, WebhookAction.ignore)
