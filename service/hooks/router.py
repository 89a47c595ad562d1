"""``POST /hooks/{connection_id}``: provider webhooks, authenticated by their signature."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connectors import WebhookRequest
from service import telemetry
from service.deps import ServicesDep, SessionDep
from service.errors import InvalidInput, InvalidSignature, NotFound, PayloadTooLarge
from service.hooks import service
from service.hooks.service import Outcome

router = APIRouter(tags=["webhooks"])
_REASONS = {
    InvalidSignature: "signature", PayloadTooLarge: "too_large", InvalidInput: "invalid",
    NotFound: "unknown_connection",
}  # fmt: skip
MAX_BODY = 1 << 20  # 1 MiB: far above any issue event; refused before it is read whole


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body is over {MAX_BODY} bytes")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the body is over {MAX_BODY} bytes")
        parts.append(part)
    return b"".join(parts)


@router.post(
    "/hooks/{connection_id}",
    status_code=202,
    summary="Receive a provider webhook",
    description="GitHub (`X-Hub-Signature-256`), Linear (`Linear-Signature` and a timestamp "
    "within a minute) and Jira (`X-Hub-Signature`, or `?secret=` on Data Center), signed with "
    "the connection's webhook secret. `202` once stored (a retry of a stored delivery is "
    "dropped); `200` to a ping; `401` for a bad signature; `413` past 1 MiB.",
)
async def receive_webhook(
    connection_id: uuid.UUID, request: Request, session: SessionDep, services: ServicesDep
) -> JSONResponse:
    try:
        body = await _body(request)
        provider, outcome = await service.receive(
            session=session,
            services=services,
            connection_id=connection_id,
            request=WebhookRequest(
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                query=dict(request.query_params),
                received_at=time.time(),
            ),
        )
    except (InvalidSignature, PayloadTooLarge, InvalidInput, NotFound) as exc:
        telemetry.WEBHOOKS_REJECTED.labels(_REASONS[type(exc)]).inc()
        raise
    telemetry.WEBHOOKS_RECEIVED.labels(provider, outcome.value).inc()
    return JSONResponse(
        {"outcome": outcome.value}, status_code=200 if outcome == Outcome.ping else 202
    )
