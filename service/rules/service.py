"""Link rules and classification rules. A change to a rule applies at once to the items
already stored, in the same transaction: links are made or removed, and derived state is
brought up to date below every item the change touches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.derived import state as derived
from service.errors import InvalidInput, NotFound
from service.models import ClassificationRule, KeyResult, Link, LinkRule, WorkItem
from service.pagination import Page, PageParams
from service.rules.apply import apply_link_rules, matching_items
from service.rules.schemas import (
    ClassificationRuleCreate,
    ClassificationRuleOut,
    ClassificationRuleUpdate,
    LinkRuleCreate,
    LinkRuleOut,
    LinkRuleUpdate,
)

R = TypeVar("R", LinkRule, ClassificationRule)


async def _get(session: AsyncSession, model: type[R], rule_id: uuid.UUID) -> R:
    rule = await session.get(model, rule_id)
    if rule is None:
        raise NotFound(f"no {'link' if model is LinkRule else 'classification'} rule {rule_id}")
    return rule


async def _list(session: AsyncSession, page: PageParams, stmt: Any, id_column: Any) -> Any:
    rows = list((await session.exec(page.apply(stmt, id_column))).all())
    return page.split(rows, lambda rule: rule.id)


async def _key_result_exists(session: AsyncSession, key_result_id: uuid.UUID) -> None:
    if await session.get(KeyResult, key_result_id) is None:
        raise InvalidInput.at("key_result_id", f"no key result {key_result_id}")


async def _links_of(session: AsyncSession, rule_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.exec(select(Link.work_item_id).where(Link.link_rule_id == rule_id))
    return set(rows.all())


async def _relink(session: AsyncSession, items: set[uuid.UUID]) -> None:
    relinked = await apply_link_rules(session, items)
    await derived.refresh(session, relinked.items, unlinked_from=relinked.unlinked_from)


def _refuse_nulls(data: BaseModel) -> None:
    """Every field of a rule may be left out of an update, none may be set to null."""
    for name in sorted(data.model_fields_set):
        if getattr(data, name) is None:
            raise InvalidInput.at(name, f"{name} cannot be null")


# Link rules


async def get_link_rule(*, session: AsyncSession, rule_id: uuid.UUID) -> LinkRuleOut:
    return LinkRuleOut.model_validate(await _get(session, LinkRule, rule_id))


async def create_link_rule(*, session: AsyncSession, data: LinkRuleCreate) -> LinkRuleOut:
    await _key_result_exists(session, data.key_result_id)
    rule = LinkRule(
        name=data.name, match=data.match.stored(), key_result_id=data.key_result_id,
        weight=data.weight,
    )  # fmt: skip
    session.add(rule)
    await session.flush()
    await _relink(session, await matching_items(session, rule.match))
    return LinkRuleOut.model_validate(rule)


async def update_link_rule(
    *, session: AsyncSession, rule_id: uuid.UUID, data: LinkRuleUpdate
) -> LinkRuleOut:
    rule = await _get(session, LinkRule, rule_id)
    _refuse_nulls(data)
    if data.key_result_id is not None:
        await _key_result_exists(session, data.key_result_id)
        rule.key_result_id = data.key_result_id
    if data.name is not None:
        rule.name = data.name
    if data.match is not None:
        rule.match = data.match.stored()
    if data.weight is not None:
        rule.weight = data.weight
    rule.updated_at = datetime.now(UTC)
    session.add(rule)
    await session.flush()
    before = await _links_of(session, rule.id)
    await _relink(session, before | await matching_items(session, rule.match))
    return LinkRuleOut.model_validate(rule)


async def delete_link_rule(*, session: AsyncSession, rule_id: uuid.UUID) -> None:
    rule = await _get(session, LinkRule, rule_id)
    items = await _links_of(session, rule.id)
    await session.delete(rule)  # its links go with it (ON DELETE CASCADE)
    await session.flush()
    # Another rule may link these items to the same KR now.
    relinked = await apply_link_rules(session, items)
    unlinked_from = {rule.key_result_id, *relinked.unlinked_from}
    await derived.refresh(session, items, unlinked_from=unlinked_from)


async def list_link_rules(
    *, session: AsyncSession, page: PageParams, key_result_id: uuid.UUID | None
) -> Page[LinkRuleOut]:
    stmt = select(LinkRule)
    if key_result_id is not None:
        stmt = stmt.where(LinkRule.key_result_id == key_result_id)
    rows, next_cursor = await _list(session, page, stmt, col(LinkRule.id))
    return Page(items=[LinkRuleOut.model_validate(r) for r in rows], next_cursor=next_cursor)


# Classification rules


async def _decided_by(session: AsyncSession, rule_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.exec(select(WorkItem.id).where(WorkItem.decided_by_rule_id == rule_id))
    return set(rows.all())


async def get_classification_rule(
    *, session: AsyncSession, rule_id: uuid.UUID
) -> ClassificationRuleOut:
    return ClassificationRuleOut.model_validate(await _get(session, ClassificationRule, rule_id))


async def create_classification_rule(
    *, session: AsyncSession, data: ClassificationRuleCreate
) -> ClassificationRuleOut:
    rule = ClassificationRule(
        name=data.name, match=data.match.stored(), priority=data.priority, category=data.category
    )
    session.add(rule)
    await session.flush()
    await derived.refresh(session, await matching_items(session, rule.match))
    return ClassificationRuleOut.model_validate(rule)


async def update_classification_rule(
    *, session: AsyncSession, rule_id: uuid.UUID, data: ClassificationRuleUpdate
) -> ClassificationRuleOut:
    rule = await _get(session, ClassificationRule, rule_id)
    _refuse_nulls(data)
    if data.name is not None:
        rule.name = data.name
    if data.match is not None:
        rule.match = data.match.stored()
    if data.priority is not None:
        rule.priority = data.priority
    if data.category is not None:
        rule.category = data.category
    rule.updated_at = datetime.now(UTC)
    session.add(rule)
    await session.flush()
    # What the rule decided before, and what it may decide now.
    roots = await _decided_by(session, rule.id) | await matching_items(session, rule.match)
    await derived.refresh(session, roots)
    return ClassificationRuleOut.model_validate(rule)


async def delete_classification_rule(*, session: AsyncSession, rule_id: uuid.UUID) -> None:
    rule = await _get(session, ClassificationRule, rule_id)
    roots = await _decided_by(session, rule.id)
    await session.delete(rule)
    await session.flush()
    await derived.refresh(session, roots)


async def list_classification_rules(
    *, session: AsyncSession, page: PageParams
) -> Page[ClassificationRuleOut]:
    rows, next_cursor = await _list(
        session, page, select(ClassificationRule), col(ClassificationRule.id)
    )
    return Page(
        items=[ClassificationRuleOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
