"""Linear webhooks, verified as Linear's SDK verifies them: ``Linear-Signature`` is the hex
HMAC-SHA256 of the raw body, and the body's ``webhookTimestamp`` (milliseconds; else the
``Linear-Timestamp`` header) must be within a minute of now, so a captured delivery cannot
be replayed later."""

from __future__ import annotations

import json

from connectors.errors import BadSignature
from connectors.webhooks import (
    WebhookAction,
    WebhookEvent,
    WebhookRequest,
    hmac_hex,
    json_object,
    require_equal,
)

TOLERANCE_SECONDS = 60.0
SYNCED_TYPES = frozenset({"Issue", "Project", "Initiative"})


def verify(request: WebhookRequest, secret: str) -> None:
    require_equal(
        request.header("linear-signature"), hmac_hex(secret, request.body), "Linear-Signature"
    )
    try:
        stamp = json.loads(request.body).get("webhookTimestamp")
    except (ValueError, AttributeError):
        stamp = None
    if stamp is None:
        stamp = request.header("linear-timestamp")
    try:
        sent = float(stamp) / 1000 if stamp is not None else None
    except (TypeError, ValueError):  # a list, an object, a word
        sent = None
    # not (... <= ...): a NaN stamp is no fresher than a missing one.
    if sent is None or not abs(request.received_at - sent) <= TOLERANCE_SECONDS:
        raise BadSignature("the webhook timestamp is missing or more than a minute off")


def parse(request: WebhookRequest) -> WebhookEvent:
    """A removed issue, project or initiative is deleted; any other change to one of them
    asks for an incremental sync (the payload carries ids where a sync stores names)."""
    delivery = request.header("linear-delivery") or ""
    payload = json_object(request.body)
    kind, action = payload.get("type"), payload.get("action")
    if kind not in SYNCED_TYPES:
        return WebhookEvent(delivery, WebhookAction.ignore)
    if action == "remove":
        return WebhookEvent(delivery, WebhookAction.delete, deleted=(str(payload["data"]["id"]),))
    return WebhookEvent(delivery, WebhookAction.sync)
