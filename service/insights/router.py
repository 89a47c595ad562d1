"""``/v1/insights``: where an OKR programme is failing, and on what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.auth.dependencies import READ
from service.deps import SessionDep, SettingsDep
from service.insights import service
from service.insights.schemas import Insights
from service.rollups.queries import Basis

router = APIRouter(prefix="/v1/insights", tags=["insights"])


@router.get("", **READ)
async def get_insights(
    session: SessionDep,
    settings: SettingsDep,
    period: Annotated[str, Query(description="Period id or name.")],
    team: Annotated[str | None, Query(description="Team id or key, with its subtree.")] = None,
    basis: Annotated[Basis, Query(description="Basis of the strategic share.")] = "count",
    limit: Annotated[int, Query(ge=1, le=1000, description="Findings listed per type.")] = 100,
) -> Insights:
    """Too many objectives per team; objectives aligned to no parent; KRs with no work
    linked; KRs with no recent check-in; open epics that serve no KR; teams whose strategic
    share sits below their target."""
    return await service.insights(
        session=session, period=period, team=team, basis=basis, limit=limit, settings=settings
    )
