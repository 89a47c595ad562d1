"""``/v1/sync-runs``: what a sync did."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from service.auth.dependencies import READ
from service.deps import SessionDep
from service.sync import service
from service.sync.schemas import SyncRunOut

router = APIRouter(prefix="/v1/sync-runs", tags=["syncs"])


@router.get("/{run_id}", **READ)
async def get_sync_run(run_id: uuid.UUID, session: SessionDep) -> SyncRunOut:
    return SyncRunOut.model_validate(await service.get_run(session=session, run_id=run_id))
