"""Manual links from work items to key results. Every change brings the derived state of the
item and of everything below it up to date in the same transaction. It waits for the writers
of the item's connection (syncs, webhooks) and takes its turn with the other link changes in
the item's tree: two rewriting one subtree's derived rows at once deadlocked on PostgreSQL.
Link changes in other trees run beside it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.derived import state as derived
from service.errors import Conflict, InvalidInput, NotFound
from service.links.schemas import LinkCreate, LinkOut
from service.models import KeyResult, Link, WorkItem
from service.models.base import utcnow
from service.pagination import Page, PageParams
from service.rules.apply import apply_link_rules
from service.sync import repository
from service.work_items import service as work_items


async def _take_turns(session: AsyncSession, connection_id: uuid.UUID, item_id: uuid.UUID) -> None:
    await repository.take_turns(session, connection_id, shared=True)
    await derived.take_tree_turn(session, item_id)


def out(link: Link, work_item_key: str) -> LinkOut:
    return LinkOut.model_validate({**link.model_dump(), "work_item_key": work_item_key})


async def create(*, session: AsyncSession, data: LinkCreate) -> LinkOut:
    if await session.get(KeyResult, data.key_result_id) is None:
        raise InvalidInput.at("key_result_id", f"no key result {data.key_result_id}")
    item = await work_items.from_body(session, data.work_item_id, data.work_item_key)
    await _take_turns(session, item.connection_id, item.id)
    existing = (
        await session.exec(
            select(Link).where(
                Link.key_result_id == data.key_result_id, Link.work_item_id == item.id
            )
        )
    ).first()
    if existing is not None and existing.origin == "manual":
        raise Conflict(f"{item.key} is linked to this key result already (link {existing.id})")
    if existing is not None:
        # A manual link takes the place of the one a rule made; the rule no longer owns it.
        existing.origin, existing.link_rule_id, existing.weight = "manual", None, data.weight
        existing.created_at = utcnow()
        link = existing
    else:
        link = Link(key_result_id=data.key_result_id, work_item_id=item.id, weight=data.weight)
    session.add(link)
    await session.flush()
    await derived.refresh(session, [item.id])
    return out(link, item.key)


async def _with_item_column(
    session: AsyncSession, link_id: uuid.UUID, column: Any
) -> tuple[Link, Any]:
    """The link and one column of its item, in one round trip (the item stays while its link
    does: deleting an item deletes its links)."""
    row = (
        await session.exec(
            select(Link, column)
            .join(WorkItem, col(WorkItem.id) == Link.work_item_id)
            .where(Link.id == link_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no link {link_id}")
    return row[0], row[1]


async def get(*, session: AsyncSession, link_id: uuid.UUID) -> LinkOut:
    return out(*await _with_item_column(session, link_id, WorkItem.key))


async def delete(*, session: AsyncSession, link_id: uuid.UUID) -> None:
    link, connection_id = await _with_item_column(session, link_id, WorkItem.connection_id)
    if link.origin == "rule":
        raise Conflict(
            f"link rule {link.link_rule_id} made this link; change or delete the rule instead"
        )
    item_id, key_result_id = link.work_item_id, link.key_result_id
    await _take_turns(session, connection_id, item_id)
    await session.delete(link)
    await session.flush()
    # A link rule may link the item to that KR now the manual link is gone.
    relinked = await apply_link_rules(session, [item_id])
    unlinked_from = {key_result_id, *relinked.unlinked_from}
    await derived.refresh(session, [item_id], unlinked_from=unlinked_from)


async def list_page(
    *,
    session: AsyncSession,
    page: PageParams,
    key_result_id: uuid.UUID | None,
    work_item: str | None,
    origin: str | None,
) -> Page[LinkOut]:
    stmt = select(Link, WorkItem.key).join(WorkItem, col(WorkItem.id) == Link.work_item_id)
    if key_result_id is not None:
        stmt = stmt.where(Link.key_result_id == key_result_id)
    if work_item is not None:
        item = await work_items.from_query(session, work_item)
        stmt = stmt.where(Link.work_item_id == item.id)
    if origin is not None:
        stmt = stmt.where(Link.origin == origin)
    rows = list((await session.exec(page.apply(stmt, col(Link.id)))).all())
    rows, next_cursor = page.split(rows, lambda row: row[0].id)
    return Page(items=[out(*row) for row in rows], next_cursor=next_cursor)


async def sources_of(session: AsyncSession, key_result_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The items linked to any of these KRs: their state changes when the KRs go."""
    if not key_result_ids:
        return set()
    rows = await session.exec(
        select(Link.work_item_id).where(col(Link.key_result_id).in_(key_result_ids))
    )
    return set(rows.all())
