"""``/v1/webhook-endpoints`` and ``/v1/webhook-messages``: outbound subscriptions. Admins only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from service.auth.dependencies import ADMIN
from service.deps import ServicesDep, SessionDep
from service.pagination import Page, PageDep
from service.webhooks import service
from service.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    MessageOut,
    SecretRotated,
)

router = APIRouter(tags=["webhook endpoints"])
ENDPOINTS = "/v1/webhook-endpoints"


@router.post(ENDPOINTS, status_code=status.HTTP_201_CREATED, **ADMIN)
async def create_endpoint(
    body: EndpointCreate, session: SessionDep, services: ServicesDep
) -> EndpointCreated:
    """Subscribe a URL to events. The response holds the signing secret, this once."""
    return await service.create(
        session=session, vault=services.vault, data=body,
        allow_private=services.settings.allow_private_webhook_urls,
    )  # fmt: skip


@router.get(ENDPOINTS, **ADMIN)
async def list_endpoints(session: SessionDep, page: PageDep) -> Page[EndpointOut]:
    return await service.list_page(session=session, page=page)


@router.get(ENDPOINTS + "/{endpoint_id}", **ADMIN)
async def get_endpoint(endpoint_id: uuid.UUID, session: SessionDep) -> EndpointOut:
    return await service.out(session, await service.get(session, endpoint_id))


@router.patch(ENDPOINTS + "/{endpoint_id}", **ADMIN)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointUpdate, session: SessionDep, services: ServicesDep
) -> EndpointOut:
    return await service.update(
        session=session, endpoint=await service.get(session, endpoint_id), data=body,
        allow_private=services.settings.allow_private_webhook_urls,
    )  # fmt: skip


@router.delete(ENDPOINTS + "/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, **ADMIN)
async def delete_endpoint(endpoint_id: uuid.UUID, session: SessionDep) -> Response:
    """Unsubscribe; its pending messages and attempt log go with it."""
    await session.delete(await service.get(session, endpoint_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(ENDPOINTS + "/{endpoint_id}/rotate-secret", **ADMIN)
async def rotate_secret(
    endpoint_id: uuid.UUID, session: SessionDep, services: ServicesDep
) -> SecretRotated:
    """A new signing secret; for 24 hours every message carries both signatures."""
    return await service.rotate_secret(
        session=session, vault=services.vault, endpoint=await service.get(session, endpoint_id)
    )


@router.post(ENDPOINTS + "/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED, **ADMIN)
async def test_endpoint(endpoint_id: uuid.UUID, session: SessionDep) -> MessageOut:
    """Queue a `webhook.test` message to this endpoint."""
    return await service.send_test(
        session=session, endpoint=await service.get(session, endpoint_id)
    )


@router.get(ENDPOINTS + "/{endpoint_id}/deliveries", **ADMIN)
async def list_deliveries(
    endpoint_id: uuid.UUID, session: SessionDep, page: PageDep
) -> Page[DeliveryOut]:
    """Every attempt to this endpoint, newest first: status, duration, the answer's first KiB."""
    return await service.deliveries(
        session=session, endpoint=await service.get(session, endpoint_id), page=page
    )


@router.get("/v1/webhook-messages/{message_id}", **ADMIN)
async def get_message(message_id: uuid.UUID, session: SessionDep) -> MessageOut:
    return service.message_out(await service.get_message(session, message_id))


@router.post(
    "/v1/webhook-messages/{message_id}/retry", status_code=status.HTTP_202_ACCEPTED, **ADMIN
)
async def retry_message(message_id: uuid.UUID, session: SessionDep) -> MessageOut:
    """Send the message again now, with the same `webhook-id`."""
    message = await service.get_message(session, message_id)
    return await service.retry(session=session, message=message)
