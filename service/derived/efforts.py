"""Per-KR linked effort (DESIGN section 3, item 8), recomputed for the KRs a write touched."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import chunks
from service.models import EffectiveLink, KeyResult, KeyResultEffort, WorkItem
from service.models.base import table_of


async def recompute(session: AsyncSession, key_result_ids: Collection[uuid.UUID]) -> None:
    """Replace the stored effort of these KRs with a fresh aggregate over their leaves."""
    stored = table_of(KeyResultEffort)
    done = col(WorkItem.status_category) == "done"
    share = col(EffectiveLink.share)
    points = share * sa.func.coalesce(WorkItem.estimate, 0.0)
    for batch in chunks(key_result_ids, 1000):
        await session.exec(sa.delete(stored).where(stored.c.key_result_id.in_(batch)))
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
                col(EffectiveLink.key_result_id).in_(batch),
                col(WorkItem.is_leaf),
                col(WorkItem.deleted_at).is_(None),
                col(WorkItem.status_category) != "canceled",
            )
            .group_by(col(EffectiveLink.key_result_id))
        )
        await session.exec(
            sa.insert(stored).from_select(
                ["key_result_id", "done_count", "all_count", "done_points", "all_points"],
                aggregate,
            )
        )
