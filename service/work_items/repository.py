"""SQL for reading work items."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import AnyPrepared, Prepared, fetch_rows
from service.models import KeyResult, Link, Team, WorkItem
from service.models.base import table_of
from service.pagination import PageParams
from service.work_items.schemas import WorkItemOut

_Parent = aliased(WorkItem)


def _with_labels() -> Any:
    return (
        select(WorkItem, Team.key, _Parent.key)
        .outerjoin(Team, col(Team.id) == WorkItem.team_id)
        .outerjoin(_Parent, col(_Parent.id) == WorkItem.parent_id)
    )


async def get(session: AsyncSession, item_id: uuid.UUID) -> Any:
    """(item, team key, parent key), or None."""
    return (await session.exec(_with_labels().where(col(WorkItem.id) == item_id))).first()


async def get_many(session: AsyncSession, ids: Collection[uuid.UUID]) -> list[Any]:
    """(item, team key, parent key) for each of ``ids`` that exists."""
    stmt = _with_labels().where(col(WorkItem.id).in_(ids)).order_by(col(WorkItem.id))
    return list((await session.exec(stmt)).all())


async def get_by_key(session: AsyncSession, key: str) -> list[Any]:
    """Every item with this key: keys are unique per connection, not across them."""
    stmt = _with_labels().where(col(WorkItem.key) == key).limit(2)
    return list((await session.exec(stmt)).all())


@lru_cache(maxsize=1)
def _listed() -> Any:
    """The columns of a listed item (schemas.WorkItemOut's fields, in their order) as plain
    rows: a page of ORM objects and models cost three times the query."""
    parent = table_of(WorkItem).alias("parent")
    labels = {"team": col(Team.key).label("team"), "parent": parent.c.key.label("parent")}
    columns = [
        labels[name] if name in labels else col(getattr(WorkItem, name))
        for name in WorkItemOut.model_fields
    ]
    return (
        sa.select(*columns)
        .outerjoin(Team, col(Team.id) == WorkItem.team_id)
        .outerjoin(parent, parent.c.id == WorkItem.parent_id)
    )


# Filters that keep the items whose column equals the parameter of that name.
_EQUAL = {
    "team": WorkItem.team_id, "connection": WorkItem.connection_id, "kind": WorkItem.kind,
    "status_category": WorkItem.status_category, "parent": WorkItem.parent_id,
}  # fmt: skip


@lru_cache(maxsize=128)
def _page_statement(
    given: frozenset[str], linked: bool | None, default_category: bool, include_deleted: bool
) -> AnyPrepared:
    """A page of items filtered as the ``given`` parameters and the flags say. Pages of one
    shape share a statement, built once (building it per request, and SQLAlchemy matching
    its result columns to the cached compilation's, cost more than PostgreSQL took to run
    it) and run with the parameters' values."""
    stmt = _listed()
    for name, column in _EQUAL.items():
        if name in given:
            stmt = stmt.where(col(column) == sa.bindparam(name))
    if "pattern" in given:
        pattern = sa.bindparam("pattern", type_=sa.String())
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(WorkItem.title).like(pattern),
                sa.func.lower(WorkItem.key).like(pattern),
            )
        )
    if linked is not None:
        strategic = col(WorkItem.category) == "strategic"
        stmt = stmt.where(
            strategic if linked else sa.or_(~strategic, col(WorkItem.category).is_(None))
        )
    if "category" in given:
        matches = col(WorkItem.category) == sa.bindparam("category")
        stmt = stmt.where(
            sa.or_(matches, col(WorkItem.category).is_(None)) if default_category else matches
        )
    if not include_deleted:
        stmt = stmt.where(col(WorkItem.deleted_at).is_(None))
    return Prepared(PageParams.apply_later(stmt, col(WorkItem.id), after="after" in given))


async def list_page(
    session: AsyncSession,
    page: PageParams,
    *,
    team_id: uuid.UUID | None,
    connection_id: uuid.UUID | None,
    kind: str | None,
    status_category: str | None,
    parent_id: uuid.UUID | None,
    q: str | None,
    include_deleted: bool,
    linked: bool | None = None,
    category: str | None = None,
    default: str = "heartbeat",
) -> list[Any]:
    """The page's rows, each with WorkItemOut's fields in their order (category None for the
    default), and one more if more follow (``page.split``)."""
    values: dict[str, Any] = {
        "team": team_id, "connection": connection_id, "kind": kind,
        "status_category": status_category, "parent": parent_id,
        "pattern": f"%{q.lower()}%" if q else None, "category": category,
    }  # fmt: skip
    params = {name: value for name, value in values.items() if value is not None}
    params |= page.parameters()
    stmt = _page_statement(frozenset(params), linked, category == default, include_deleted)
    return list(await fetch_rows(session, stmt, params))


async def assign_team(session: AsyncSession, team_key: str, team_id: uuid.UUID | None) -> None:
    """Attach items mapped to ``team_key`` to the team now holding that key (or none)."""
    await session.exec(
        sa.update(WorkItem).where(col(WorkItem.team_key) == team_key).values(team_id=team_id)
    )


async def effective_links(session: AsyncSession, item: WorkItem) -> list[Any]:
    """(key result id, title, share) of the KRs the item's effort counts toward: the links of
    the item that decided it, if strategic."""
    if item.category != "strategic" or item.decided_by_item_id is None:
        return []
    stmt = (
        select(Link.key_result_id, KeyResult.title, Link.share)
        .join(KeyResult, col(KeyResult.id) == Link.key_result_id)
        .where(Link.work_item_id == item.decided_by_item_id)
        .order_by(col(Link.share).desc(), col(KeyResult.title))
    )
    return list((await session.exec(stmt)).all())
