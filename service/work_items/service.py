"""Reading synced work items; they are written only by the sync engine."""

from __future__ import annotations

import uuid
from operator import itemgetter
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import Kind, StatusCategory
from service.catalog import current, team_named
from service.connections import service as connections
from service.errors import Conflict, InvalidInput, NotFound
from service.models import ClassificationRule, WorkItem
from service.pagination import PageParams
from service.refs import as_uuid
from service.settings import Category
from service.work_items import repository
from service.work_items.schemas import (
    EffectiveLinkOut,
    ItemRef,
    RuleRef,
    Why,
    WorkItemDetail,
    WorkItemOut,
)

# A listed row's columns, in the order repository._listed selects them.
_LISTED = tuple(WorkItemOut.model_fields)
_ID = _LISTED.index("id")


def out(row: Any, default: Category) -> WorkItemOut:
    item, team_key, parent_key = row
    return WorkItemOut.model_validate(
        {
            **item.model_dump(),
            "team": team_key,
            "parent": parent_key,
            "category": item.category or default,
        }
    )


async def detail(session: AsyncSession, row: Any, default: Category) -> WorkItemDetail:
    """The item with its effective links, its category, and why it has that category."""
    base = out(row, default)
    item: WorkItem = row[0]
    links = [
        EffectiveLinkOut(key_result_id=kr_id, key_result=title, share=share)
        for kr_id, title, share in await repository.effective_links(session, item)
    ]
    decider = (
        await session.get(WorkItem, item.decided_by_item_id) if item.decided_by_item_id else None
    )
    decider_ref = ItemRef(id=decider.id, key=decider.key, title=decider.title) if decider else None
    rule = (
        await session.get(ClassificationRule, item.decided_by_rule_id)
        if item.decided_by_rule_id
        else None
    )
    itself = decider is not None and decider.id == item.id
    where = "itself" if itself else f"its ancestor {decider.key}" if decider else ""
    if links and decider is not None:
        why = Why(
            source="links", item=decider_ref, rule=None,
            explanation=f"strategic: {where} is linked to {len(links)} key result(s)",
        )  # fmt: skip
    elif rule is not None and decider is not None:
        label = rule.name or str(rule.id)
        why = Why(
            source="rule", item=decider_ref,
            rule=RuleRef(id=rule.id, name=rule.name, priority=rule.priority),
            explanation=f"{rule.category}: classification rule {label!r} matches {where}",
        )  # fmt: skip
    else:
        why = Why(
            source="default",
            item=None,
            rule=None,
            explanation=f"{default.value}: no links on the item or its ancestors, and no "
            "classification rule matches them, so the configured default applies",
        )
    return WorkItemDetail.model_validate({**base.model_dump(), "links": links, "why": why})


async def get(*, session: AsyncSession, ref: str, default: Category) -> WorkItemDetail:
    """The item a path names by id or key (PAY-12, acme/api#12)."""
    item_id = as_uuid(ref)
    if item_id is not None:
        row = await repository.get(session, item_id)
        if row is None:
            raise NotFound(f"no work item {ref!r}")
        return await detail(session, row, default)
    rows = await repository.get_by_key(session, ref)
    if not rows:
        raise NotFound(f"no work item {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"several connections have an item {ref!r}; name it by id")
    return await detail(session, rows[0], default)


async def list_page(
    *,
    session: AsyncSession,
    page: PageParams,
    team: str | None,
    connection: str | None,
    kind: Kind | None,
    status_category: StatusCategory | None,
    parent_id: uuid.UUID | None,
    q: str | None,
    include_deleted: bool,
    linked: bool | None,
    category: Category | None,
    default: Category,
) -> dict[str, Any]:
    """A page in the shape of Page[WorkItemOut], as plain data (see repository._listed)."""
    # The team from the catalog, as roll-ups find it: a page of a team's items is a third of
    # the API's reads, and loading the team as an ORM object was a quarter of its CPU.
    team_id = None
    if team is not None:
        found, _ = await team_named(session, await current(session), team)
        team_id = found.id
    connection_row = await connections.resolver.from_query(session, connection, "connection")
    rows = await repository.list_page(
        session,
        page,
        team_id=team_id,
        connection_id=connection_row.id if connection_row else None,
        kind=kind.value if kind else None,
        status_category=status_category.value if status_category else None,
        parent_id=parent_id,
        q=q,
        include_deleted=include_deleted,
        linked=linked,
        category=category.value if category else None,
        default=default.value,
    )
    rows, next_cursor = page.split(rows, itemgetter(_ID))
    items = [dict(zip(_LISTED, row, strict=True)) for row in rows]
    for item in items:
        item["category"] = item["category"] or default.value
    return {"items": items, "next_cursor": next_cursor}


async def _find(session: AsyncSession, ref: str) -> list[WorkItem]:
    item_id = as_uuid(ref)
    if item_id is not None:
        found = await session.get(WorkItem, item_id)
        return [found] if found is not None else []
    return [row[0] for row in await repository.get_by_key(session, ref)]


async def _reference(session: AsyncSession, ref: str, loc: list[str]) -> WorkItem:
    found = await _find(session, ref)
    if len(found) == 1:
        return found[0]
    detail = (
        f"no work item {ref!r}"
        if not found
        else f"several connections have an item {ref!r}; name it by id"
    )
    raise InvalidInput(detail, errors=[{"loc": loc, "msg": detail}])


async def from_body(session: AsyncSession, item_id: uuid.UUID | None, key: str | None) -> WorkItem:
    """The item a body names by ``work_item_id`` or ``work_item_key``: exactly one of them."""
    if (item_id is None) == (key is None):
        raise InvalidInput.at("work_item_id", "give work_item_id or work_item_key (one of them)")
    if item_id is not None:
        return await _reference(session, str(item_id), ["body", "work_item_id"])
    assert key is not None
    return await _reference(session, key, ["body", "work_item_key"])


async def from_query(session: AsyncSession, ref: str) -> WorkItem:
    return await _reference(session, ref, ["query", "work_item"])
