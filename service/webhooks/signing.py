"""Standard Webhooks signing: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` under the
base64-decoded ``whsec_`` secret; during a rotation both secrets sign, space-separated.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    *, message_id: str, timestamp: datetime, body: str, keys: Iterable[str]
) -> dict[str, str]:
    signatures = " ".join(
        Webhook(key).sign(msg_id=message_id, timestamp=timestamp, data=body) for key in keys
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
