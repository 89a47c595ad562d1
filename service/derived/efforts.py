"""Per-KR linked effort (DESIGN section 3, item 8), recomputed for the KRs a write touched."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import Statement, among_parameter, chunks, execute, run
from service.models import KeyResult, KeyResultEffort, Link, WorkItem
from service.models.base import table_of

# The key space of the per-KR lock (see _take_turns).
KEY_RESULT_LOCK = 0x6F6B726B  # "okrk"
_KEY_RESULT_LOCKS = Statement(
    sa.text(
        # The sort is fenced off (OFFSET 0) so that the locks are taken in its order.
        "SELECT count(pg_advisory_xact_lock(:space, hashtext(k::text)))"
        " FROM (SELECT k FROM unnest(CAST(:ids AS uuid[])) AS k ORDER BY k OFFSET 0) AS sorted"
    )
)


async def _take_turns(session: AsyncSession, key_result_ids: Collection[uuid.UUID]) -> None:
    """Writers of these KRs' rows take turns, each taking the KRs in one order. Two writers
    inserting rows for KRs that had none would otherwise each wait on the other's new row
    (a deadlock on PostgreSQL); a DELETE locks only rows that exist."""
    if session.get_bind().dialect.name == "postgresql":
        ids = sorted(key_result_ids)
        await run(session, _KEY_RESULT_LOCKS, {"space": KEY_RESULT_LOCK, "ids": ids})


FIGURES = ("done_count", "all_count", "done_points", "all_points")


def _aggregate(dialect: str) -> Any:
    """Per KR in parameter ``ids`` with live leaves: its linked effort, in FIGURES' order.
    A leaf counts toward the KRs of its link source's links (service.derived.state)."""
    done = col(WorkItem.status_category) == "done"
    share = col(Link.share)
    points = share * sa.func.coalesce(WorkItem.estimate, 0.0)
    return (
        sa.select(
            col(Link.key_result_id).label("key_result_id"),
            sa.func.sum(sa.case((done, share), else_=0.0)).label(FIGURES[0]),
            sa.func.sum(share).label(FIGURES[1]),
            sa.func.sum(sa.case((done, points), else_=0.0)).label(FIGURES[2]),
            sa.func.sum(points).label(FIGURES[3]),
        )
        .select_from(Link)
        .join(WorkItem, col(WorkItem.decided_by_item_id) == Link.work_item_id)
        # KRs deleted in this transaction keep no row.
        .join(KeyResult, col(KeyResult.id) == Link.key_result_id)
        .where(
            among_parameter(col(Link.key_result_id), "ids", dialect),
            # As the partial index says, so that the leaves are found through it.
            col(WorkItem.category) == "strategic",
            col(WorkItem.is_leaf),
            col(WorkItem.deleted_at).is_(None),
            col(WorkItem.status_category) != "canceled",
        )
        .group_by(col(Link.key_result_id))
    )


@lru_cache(maxsize=1)
def _postgres_statement() -> Statement:
    """``recompute`` in one statement: the fresh sums are upserted, writing only the rows
    whose figures moved (a link change mostly moves one KR of the few it touches), and the
    rows of KRs left with no leaves are deleted. The two parts touch different KRs, so one
    statement holds both. A delete and an insert of every row cost two round trips and left
    a dead row per KR and write."""
    stored = table_of(KeyResultEffort)
    fresh = _aggregate("postgresql").cte("fresh")
    insert = postgresql.insert(stored).from_select(["key_result_id", *FIGURES], sa.select(fresh))
    upsert = insert.on_conflict_do_update(
        index_elements=[stored.c.key_result_id],
        set_={name: insert.excluded[name] for name in FIGURES},
        where=sa.tuple_(*(stored.c[name] for name in FIGURES)).is_distinct_from(
            sa.tuple_(*(insert.excluded[name] for name in FIGURES))
        ),
    ).cte("upserted")
    return Statement(
        sa.delete(stored)
        .where(
            among_parameter(stored.c.key_result_id, "ids", "postgresql"),
            stored.c.key_result_id.not_in(sa.select(fresh.c.key_result_id)),
        )
        .add_cte(upsert)
    )


@lru_cache(maxsize=1)
def _sqlite_statements() -> tuple[Any, Any]:
    """The delete and the insert of ``recompute`` on SQLite, which has no writing CTEs."""
    stored = table_of(KeyResultEffort)
    delete = sa.delete(stored).where(among_parameter(stored.c.key_result_id, "ids", "sqlite"))
    insert = sa.insert(stored).from_select(["key_result_id", *FIGURES], _aggregate("sqlite"))
    return delete, insert


async def recompute(session: AsyncSession, key_result_ids: Collection[uuid.UUID]) -> None:
    """Bring the stored effort of these KRs to a fresh aggregate over their leaves."""
    await _take_turns(session, key_result_ids)
    postgres = session.get_bind().dialect.name == "postgresql"
    for batch in chunks(key_result_ids, 1000):
        if postgres:
            await run(session, _postgres_statement(), {"ids": batch})
            continue
        delete, insert = _sqlite_statements()
        await execute(session, delete, {"ids": batch})
        await execute(session, insert, {"ids": batch})
