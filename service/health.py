"""Probes, metrics and the problem-type documents: no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel

from service.deps import DatabaseDep
from service.errors import PROBLEM_TYPES, NotFound, problem_response, problem_type_uri
from service.query_guard import known_query_only

# The /v1 operations check their query in their guard (service.auth.dependencies).
router = APIRouter(tags=["operations"], dependencies=[Depends(known_query_only)])


class Status(BaseModel):
    status: str


class ProblemType(BaseModel):
    type: str
    title: str
    description: str


@router.get("/healthz")
async def healthz() -> Status:
    """The process is up and serving."""
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses={503: {"description": "Not ready"}})
async def readyz(request: Request, db: DatabaseDep) -> Response:
    """Ready for traffic: the database answers."""
    try:
        await db.ping()
    except Exception:
        return problem_response(
            status=503,
            slug="internal-error",
            detail="the database does not answer",
            instance=request.url.path,
        )
    return Response(Status(status="ready").model_dump_json(), media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    # The app's HTTP metrics, then the process-wide ones of syncs, jobs and webhooks.
    exposition = generate_latest(registry) + generate_latest(REGISTRY)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


@router.get("/problems/{slug}")
async def problem_type(slug: str) -> ProblemType:
    """What a problem ``type`` means."""
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"no problem type {slug!r}")
    title, description = PROBLEM_TYPES[slug]
    return ProblemType(type=problem_type_uri(slug), title=title, description=description)
