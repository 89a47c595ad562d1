"""Per-KR linked effort (DESIGN section 3, item 8), recomputed for the KRs a write touched."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import among_parameter, chunks, execute
from service.models import EffectiveLink, KeyResult, KeyResultEffort, WorkItem
from service.models.base import table_of

# The key space of the per-KR lock (see _take_turns).
KEY_RESULT_LOCK = 0x6F6B726B  # "okrk"
_KEY_RESULT_LOCKS = sa.text(
    # The sort is fenced off (OFFSET 0) so that the locks are taken in its order.
    "SELECT count(pg_advisory_xact_lock(:space, hashtext(k::text)))"
    " FROM (SELECT k FROM unnest(CAST(:ids AS uuid[])) AS k ORDER BY k OFFSET 0) AS sorted"
)


async def _take_turns(session: AsyncSession, key_result_ids: Collection[uuid.UUID]) -> None:
    """Writers of these KRs' rows take turns, each taking the KRs in one order. Two writers
    inserting rows for KRs that had none would otherwise each wait on the other's new row
    (a deadlock on PostgreSQL); a DELETE locks only rows that exist."""
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        ids = sorted(key_result_ids)
        await connection.execute(_KEY_RESULT_LOCKS, {"space": KEY_RESULT_LOCK, "ids": ids})


@lru_cache(maxsize=2)
def _statements(dialect: str) -> tuple[Any, Any]:
    """The delete and the insert of ``recompute``, for the KRs in parameter ``ids``: built
    once, as a link change runs them for a KR or two."""
    stored = table_of(KeyResultEffort)
    done = col(WorkItem.status_category) == "done"
    share = col(EffectiveLink.share)
    points = share * sa.func.coalesce(WorkItem.estimate, 0.0)
    delete = sa.delete(stored).where(among_parameter(stored.c.key_result_id, "ids", dialect))
    aggregate = (
        sa.select(
            col(EffectiveLink.key_result_id),
            sa.func.sum(sa.case((done, share), else_=0.0)),
            sa.func.sum(share),
            sa.func.sum(sa.case((done, points), else_=0.0)),
            sa.func.sum(points),
        )
        .select_from(EffectiveLink)
        .join(WorkItem, col(WorkItem.id) == EffectiveLink.work_item_id)
        # KRs deleted in this transaction keep no row.
        .join(KeyResult, col(KeyResult.id) == EffectiveLink.key_result_id)
        .where(
            among_parameter(col(EffectiveLink.key_result_id), "ids", dialect),
            col(WorkItem.is_leaf),
            col(WorkItem.deleted_at).is_(None),
            col(WorkItem.status_category) != "canceled",
        )
        .group_by(col(EffectiveLink.key_result_id))
    )
    insert = sa.insert(stored).from_select(
        ["key_result_id", "done_count", "all_count", "done_points", "all_points"], aggregate
    )
    return delete, insert


async def recompute(session: AsyncSession, key_result_ids: Collection[uuid.UUID]) -> None:
    """Replace the stored effort of these KRs with a fresh aggregate over their leaves."""
    await _take_turns(session, key_result_ids)
    delete, insert = _statements(session.get_bind().dialect.name)
    for batch in chunks(key_result_ids, 1000):
        await execute(session, delete, {"ids": batch})
        await execute(session, insert, {"ids": batch})
