"""Applying rules to stored items: which items a rule's match selects, and the links that link
rules make (DESIGN section 4: rules apply to the items already stored, not only to new ones)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import among, chunks, fetch_rows
from service.models import Link, LinkRule, WorkItem
from service.models.base import new_id, table_of, utcnow
from service.rules.matching import SUBJECT_COLUMNS, Matcher, prefilter, subject_of

SCAN_BATCH = 10_000


async def matching_items(
    session: AsyncSession, match: Mapping[str, Sequence[str]]
) -> set[uuid.UUID]:
    """Live items the match selects: SQL narrows the rows read, the Matcher decides."""
    matcher = Matcher.of(match)
    found: set[uuid.UUID] = set()
    stmt = (
        sa.select(col(WorkItem.id), *SUBJECT_COLUMNS)
        .where(col(WorkItem.deleted_at).is_(None), *prefilter(match))
        .execution_options(yield_per=SCAN_BATCH)
    )
    result = await session.stream(stmt)
    async for partition in result.partitions():
        for row in partition:
            if matcher(subject_of(row[1:])):
                found.add(row[0])
    return found


@dataclass(slots=True)
class Relinked:
    """What ``apply_link_rules`` changed: the items whose links changed, and the KRs that
    links were taken from (their linked effort moves; see ``derived.refresh``)."""

    items: set[uuid.UUID] = field(default_factory=set)
    unlinked_from: set[uuid.UUID] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Rule:
    id: uuid.UUID
    key_result_id: uuid.UUID
    weight: float
    matches: Matcher


async def apply_link_rules(
    session: AsyncSession,
    item_ids: Collection[uuid.UUID],
    *,
    new: AbstractSet[uuid.UUID] = frozenset(),
) -> Relinked:
    """Make the rule-made links of ``item_ids`` what the link rules say now; returns the items
    whose links changed and the KRs links were taken from. Where several rules link one item
    to the same KR, the rule created first makes the link; a manual link to that KR takes
    precedence over every rule. Items in ``new`` were inserted by this transaction: they
    have no links to look up yet."""
    rows = await session.exec(select(LinkRule).order_by(col(LinkRule.id)))
    rules = [_Rule(r.id, r.key_result_id, r.weight, Matcher.of(r.match)) for r in rows.all()]
    changed = Relinked()
    if not rules:
        # A rule-made link names its rule (a check constraint) and goes with it (cascade):
        # with no rules there are none to look up, and a link change saves a round trip.
        return changed
    links = table_of(Link)
    for batch in chunks(item_ids):
        existing: dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, str, Any, float]] = {}
        if stored := [i for i in batch if i not in new]:
            stmt = sa.select(
                col(Link.id), col(Link.work_item_id), col(Link.key_result_id), col(Link.origin),
                col(Link.link_rule_id), col(Link.weight),
            ).where(among(session, col(Link.work_item_id), stored))  # fmt: skip
            existing = {
                (item, kr): (link_id, origin, rule_id, weight)
                for link_id, item, kr, origin, rule_id, weight in await fetch_rows(session, stmt)
            }
        wanted: dict[tuple[uuid.UUID, uuid.UUID], _Rule] = {}
        if rules:
            subjects = sa.select(col(WorkItem.id), *SUBJECT_COLUMNS).where(
                among(session, col(WorkItem.id), batch)
            )
            for row in await fetch_rows(session, subjects):
                subject = subject_of(row[1:])
                for rule in rules:
                    if (row[0], rule.key_result_id) not in wanted and rule.matches(subject):
                        wanted[(row[0], rule.key_result_id)] = rule
        # The rule-made links no rule wants as they are, by (item, KR).
        stale = {
            pair: link_id
            for pair, (link_id, origin, rule_id, weight) in existing.items()
            if origin == "rule"
            and (pair not in wanted or (wanted[pair].id, wanted[pair].weight) != (rule_id, weight))
        }
        changed.unlinked_from.update(kr for _, kr in stale)
        if stale:
            await session.exec(sa.delete(links).where(links.c.id.in_(list(stale.values()))))
        now = utcnow()
        fresh: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "created_at": now,
                "work_item_id": item,
                "key_result_id": kr,
                "weight": rule.weight,
                "origin": "rule",
                "link_rule_id": rule.id,
            }
            for (item, kr), rule in wanted.items()
            if (item, kr) not in existing or (item, kr) in stale
        ]
        if fresh:
            await session.exec(sa.insert(links), params=fresh)
        changed.items.update(item for item, _ in stale)
        changed.items.update(row["work_item_id"] for row in fresh)
    return changed
