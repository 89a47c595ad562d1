"""``/v1/connections``: provider connections, their checks and syncs. Admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.auth.dependencies import ADMIN
from service.connections import service
from service.connections.schemas import (
    CheckResult,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionOut,
    ConnectionUpdate,
)
from service.deps import ServicesDep, SessionDep
from service.pagination import Page, PageDep
from service.sync import service as syncs
from service.sync.schemas import SyncRequest, SyncRunOut

router = APIRouter(prefix="/v1/connections", tags=["connections"])


@router.post("", status_code=status.HTTP_201_CREATED, **ADMIN)
async def create_connection(
    body: ConnectionCreate, session: SessionDep, services: ServicesDep
) -> ConnectionCreated:
    return await service.create(
        session=session, registry=services.registry, vault=services.vault, data=body
    )


@router.get("", **ADMIN)
async def list_connections(
    session: SessionDep,
    page: PageDep,
    provider: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[ConnectionOut]:
    return await service.list_page(session=session, page=page, provider=provider)


@router.get("/{connection}", **ADMIN)
async def get_connection(connection: str, session: SessionDep) -> ConnectionOut:
    return service.out(await service.resolver.get(session, connection))


@router.patch("/{connection}", **ADMIN)
async def update_connection(
    connection: str, body: ConnectionUpdate, session: SessionDep, services: ServicesDep
) -> ConnectionOut:
    """Change a connection. A config change re-syncs stored items in full."""
    found = await service.resolver.get(session, connection)
    updated, resync = await service.update(
        session=session,
        registry=services.registry,
        vault=services.vault,
        connection=found,
        data=body,
    )
    if resync:
        await syncs.request_full_resync(session=session, connection=found)
    return updated


@router.delete("/{connection}", status_code=status.HTTP_204_NO_CONTENT, **ADMIN)
async def delete_connection(connection: str, session: SessionDep) -> Response:
    await service.delete(
        session=session, connection=await service.resolver.get(session, connection)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{connection}/check", **ADMIN)
async def check_connection(
    connection: str, session: SessionDep, services: ServicesDep
) -> CheckResult:
    """Try the stored credentials against the provider."""
    found = await service.resolver.get(session, connection)
    return await service.check(
        registry=services.registry, vault=services.vault, connection=found, http=services.http
    )


@router.post("/{connection}/sync", status_code=status.HTTP_202_ACCEPTED, **ADMIN)
async def sync_connection(
    connection: str, session: SessionDep, body: SyncRequest | None = None
) -> SyncRunOut:
    found = await service.resolver.get(session, connection)
    mode = body.mode if body else "incremental"
    run = await syncs.request_sync(session=session, connection=found, mode=mode)
    return SyncRunOut.model_validate(run)


@router.get("/{connection}/sync-runs", **ADMIN)
async def list_sync_runs(connection: str, session: SessionDep, page: PageDep) -> Page[SyncRunOut]:
    """Sync runs, newest first."""
    found = await service.resolver.get(session, connection)
    return await syncs.list_runs(session=session, page=page, connection=found)
