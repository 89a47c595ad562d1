"""``/v1/rollups``: where a period's effort went, as JSON or, with ``Accept: text/csv``, CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from service.auth.dependencies import READ
from service.deps import SessionDep, SettingsDep
from service.jsonbody import dumps
from service.rollups import service
from service.rollups.csv import rollup_csv, trend_csv
from service.rollups.queries import Basis
from service.rollups.schemas import Rollup, Trend
from service.rollups.windows import Interval

router = APIRouter(prefix="/v1/rollups", tags=["roll-ups"])

CSV = "text/csv"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {"schema": {"type": "string"}}}, "description": "JSON or CSV"}
}
PeriodQuery = Annotated[str, Query(description="Period id or name.")]
TeamQuery = Annotated[
    str | None, Query(description="Team id or key: that team and every team below it.")
]
BasisQuery = Annotated[
    Basis, Query(description="count: leaves; points: estimates; days: days worked in the period.")
]
OpenQuery = Annotated[
    bool, Query(description="Also count open leaves created before the period's end.")
]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]


def _wants_csv(accept: str | None) -> bool:
    return accept is not None and CSV in accept and "application/json" not in accept


@router.get("", response_model=Rollup, responses=CSV_RESPONSE, **READ)
async def get_rollup(
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    team: TeamQuery = None,
    basis: BasisQuery = "count",
    include_open: OpenQuery = False,
    accept: AcceptHeader = None,
) -> Any:
    """Strategic, improvement and heartbeat effort of the leaves in scope (DESIGN section 3),
    with the split across key results and each direct child team."""
    result = await service.rollup(
        session=session, period=period, team=team, basis=basis, include_open=include_open,
        default=settings.default_category,
    )  # fmt: skip
    if _wants_csv(accept):
        return Response(
            rollup_csv(Rollup.model_validate(result)), media_type=f"{CSV}; charset=utf-8"
        )
    # Already in the schema's shape: serialised as it is, not validated into models again.
    return Response(dumps(result), media_type="application/json")


@router.get("/trend", response_model=Trend, responses=CSV_RESPONSE, **READ)
async def get_trend(
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    team: TeamQuery = None,
    basis: BasisQuery = "count",
    include_open: OpenQuery = False,
    interval: Interval = Interval.week,
    accept: AcceptHeader = None,
) -> Any:
    """The same categories for each week (Monday first) or month of the period, each rolled
    up as a period of its own."""
    result = await service.trend(
        session=session, period=period, team=team, basis=basis, include_open=include_open,
        interval=interval, default=settings.default_category,
    )  # fmt: skip
    if _wants_csv(accept):
        return Response(trend_csv(result), media_type=f"{CSV}; charset=utf-8")
    return Trend.model_validate(result)
