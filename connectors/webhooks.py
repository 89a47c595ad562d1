"""Provider webhooks as connectors see them: a request to verify, then an event to apply.

Verification runs on the raw body, before anything is parsed, and compares in constant time.
The delivery id is the provider's own, the same across its retries, so duplicates can be
dropped by it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connectors.errors import BadSignature
from connectors.models import WorkItem


@dataclass(frozen=True)
class WebhookRequest:
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: float = 0.0  # seconds since the epoch

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class WebhookAction(StrEnum):
    upsert = "upsert"  # store these items as a sync page would
    delete = "delete"  # mark these external ids deleted
    # Something changed that the payload does not describe as a sync would store it: run an
    # incremental sync of the connection (Linear's and Jira's payloads lack fields a sync
    # stores, so storing them as they are would make items flip between two versions).
    sync = "sync"
    ping = "ping"  # the provider checking the endpoint
    ignore = "ignore"  # an event okr-sync does not use


@dataclass(frozen=True)
class WebhookEvent:
    delivery_id: str
    action: WebhookAction
    items: tuple[WorkItem, ...] = ()
    deleted: tuple[str, ...] = ()  # external ids


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def require_equal(given: str | None, expected: str, what: str) -> None:
    """Constant-time comparison; a missing value fails like a wrong one."""
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadSignature(f"{what} does not verify")


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``ValueError`` for anything else (``null``, a list, bytes
    that are not JSON), which the service answers with a 422."""
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError(f"the body is a JSON {type(payload).__name__}, not an object")
    return payload
