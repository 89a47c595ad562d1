"""Jira webhooks. Cloud webhooks registered with a secret carry ``X-Hub-Signature:
sha256=<hex HMAC-SHA256 of the raw body>``; Data Center webhooks carry no signature, so the
URL registered there holds the secret as a ``secret`` query parameter."""

from __future__ import annotations

from connectors.webhooks import (
    WebhookAction,
    WebhookEvent,
    WebhookRequest,
    hmac_hex,
    json_object,
    require_equal,
)

CHANGED = frozenset({"jira:issue_created", "jira:issue_updated"})


def verify(request: WebhookRequest, secret: str) -> None:
    signature = request.header("x-hub-signature")
    if signature is not None:
        require_equal(signature, "sha256=" + hmac_hex(secret, request.body), "X-Hub-Signature")
        return
    require_equal(request.query.get("secret"), secret, "the secret query parameter")


def parse(request: WebhookRequest) -> WebhookEvent:
    """A deleted issue is deleted; a created or updated one asks for an incremental sync
    (the payload's custom fields are only known by the ids a sync discovers)."""
    delivery = request.header("x-atlassian-webhook-identifier") or ""
    payload = json_object(request.body)
    event = payload.get("webhookEvent")
    if event == "jira:issue_deleted":
        issue_id = str(payload["issue"]["id"])
        return WebhookEvent(delivery, WebhookAction.delete, deleted=(issue_id,))
    if event in CHANGED:
        return WebhookEvent(delivery, WebhookAction.sync)
    return WebhookEvent(delivery, WebhookAction.ignore)
