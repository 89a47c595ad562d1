"""``/v1/link-rules`` and ``/v1/classification-rules``: rules that link and classify work in
bulk, applied to the items already stored and to every item as it syncs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from service.auth.dependencies import READ, WRITE
from service.deps import SessionDep
from service.pagination import Page, PageDep
from service.rules import service
from service.rules.schemas import (
    ClassificationRuleCreate,
    ClassificationRuleOut,
    ClassificationRuleUpdate,
    LinkRuleCreate,
    LinkRuleOut,
    LinkRuleUpdate,
)

router = APIRouter(tags=["rules"])
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.post("/v1/link-rules", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_link_rule(body: LinkRuleCreate, session: SessionDep) -> LinkRuleOut:
    """Link every item the match selects to the key result, now and as items sync."""
    return await service.create_link_rule(session=session, data=body)


@router.get("/v1/link-rules", **READ)
async def list_link_rules(
    session: SessionDep, page: PageDep, key_result_id: uuid.UUID | None = None
) -> Page[LinkRuleOut]:
    return await service.list_link_rules(session=session, page=page, key_result_id=key_result_id)


@router.get("/v1/link-rules/{rule_id}", **READ)
async def get_link_rule(rule_id: uuid.UUID, session: SessionDep) -> LinkRuleOut:
    return await service.get_link_rule(session=session, rule_id=rule_id)


@router.patch("/v1/link-rules/{rule_id}", **WRITE)
async def update_link_rule(
    rule_id: uuid.UUID, body: LinkRuleUpdate, session: SessionDep
) -> LinkRuleOut:
    return await service.update_link_rule(session=session, rule_id=rule_id, data=body)


@router.delete("/v1/link-rules/{rule_id}", status_code=NO_CONTENT, **WRITE)
async def delete_link_rule(rule_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_link_rule(session=session, rule_id=rule_id)
    return Response(status_code=NO_CONTENT)


@router.post("/v1/classification-rules", status_code=status.HTTP_201_CREATED, **WRITE)
async def create_classification_rule(
    body: ClassificationRuleCreate, session: SessionDep
) -> ClassificationRuleOut:
    """Classify work no key result claims as improvement or heartbeat. The highest-priority
    rule that matches an item, or failing that its nearest ancestor, decides."""
    return await service.create_classification_rule(session=session, data=body)


@router.get("/v1/classification-rules", **READ)
async def list_classification_rules(
    session: SessionDep, page: PageDep
) -> Page[ClassificationRuleOut]:
    return await service.list_classification_rules(session=session, page=page)


@router.get("/v1/classification-rules/{rule_id}", **READ)
async def get_classification_rule(rule_id: uuid.UUID, session: SessionDep) -> ClassificationRuleOut:
    return await service.get_classification_rule(session=session, rule_id=rule_id)


@router.patch("/v1/classification-rules/{rule_id}", **WRITE)
async def update_classification_rule(
    rule_id: uuid.UUID, body: ClassificationRuleUpdate, session: SessionDep
) -> ClassificationRuleOut:
    return await service.update_classification_rule(session=session, rule_id=rule_id, data=body)


@router.delete("/v1/classification-rules/{rule_id}", status_code=NO_CONTENT, **WRITE)
async def delete_classification_rule(rule_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_classification_rule(session=session, rule_id=rule_id)
    return Response(status_code=NO_CONTENT)
