"""Jira webhooks. Cloud webhooks registered with a secret carry ``X-Hub-Signature:
sha256=<hex HMAC-SHA256 of the raw body>``; Data Center webhooks carry no signature, so the
URL registered there holds the secret as a ``secret`` query parameter."""

from __future__ import annotations

from connectors.webhooks import WebhookRequest, hmac_hex, require_equal


def verify(request: WebhookRequest, secret: str) -> None:
    signature = request.header("x-hub-signature")
    if signature is not None:
        require_equal(signature, "sha256=" + hmac_hex(secret, request.body), "X-Hub-Signature")
        return
    require_equal(request.query.get("secret"), secret, "the secret query parameter")
