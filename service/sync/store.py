"""Writing work items, for the sync engine's pages and for provider webhooks alike.

Each call is part of the caller's transaction: the items, their parent links, the link
rules they match and the derived state below them change together.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import WorkItem as Item
from service.derived import state as derived
from service.models.base import new_id
from service.rules.apply import apply_link_rules
from service.rules.matching import Subject
from service.sync import repository


def item_rows(
    connection_id: uuid.UUID,
    run_id: uuid.UUID | None,
    items: Iterable[Item],
    teams: dict[str, uuid.UUID],
    now: datetime,
) -> list[dict[str, Any]]:
    """Database rows for items, with no id yet; the last copy wins when an item repeats."""
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        # The fields as they are: a frozen model's __dict__ is its values, and model_dump
        # took a fifth of the time of storing a page.
        values = dict(item.__dict__)
        values.update(
            connection_id=connection_id,
            team_id=teams.get(item.team_key) if item.team_key else None,
            kind=item.kind.value,
            status_category=item.status_category.value,
            labels=list(item.labels),
            containers=list(item.containers),
            deleted_at=None,  # seen again: not deleted
            last_seen_run_id=run_id,
            synced_at=now,
        )
        rows[item.external_id] = values
    return list(rows.values())


def _nodes(
    rows: Iterable[dict[str, Any]], existing: Mapping[str, repository.Stored]
) -> dict[uuid.UUID, derived.Node]:
    """The written rows as derived state's nodes, as they are now stored."""
    nodes = {}
    for row in rows:
        prior = existing.get(row["external_id"])
        subject = Subject.of(
            labels=row["labels"],
            type_name=row["type_name"],
            kind=row["kind"],
            team_key=row["team_key"],
            containers=row["containers"],
        )
        nodes[row["id"]] = derived.Node(
            id=row["id"],
            parent_id=row["parent_id"],
            deleted=row["deleted_at"] is not None,
            subject=subject,
            # A new row is stored with no category decided yet (see store_items).
            stored=prior.derived if prior is not None else (row["is_leaf"], None, None, None),
        )
    return nodes


async def store_items(
    session: AsyncSession,
    connection_id: uuid.UUID,
    items: Collection[Item],
    *,
    now: datetime,
    run_id: uuid.UUID | None,
) -> dict[str, int]:
    """Upsert ``items`` (each counted and stored once, its last copy) and bring everything
    they touch up to date. ``run_id`` is the sync run that saw them; None (a webhook) leaves
    each stored item's last sighting as it was, so that a full sync running meanwhile does
    not take it for gone."""
    if not items:
        return {"fetched": 0, "created": 0, "updated": 0}
    await repository.take_turns(session, connection_id)
    teams = await repository.team_ids(
        session, {i.team_key for i in items if i.team_key is not None}
    )
    rows = item_rows(connection_id, run_id, items, teams, now)
    ids = [row["external_id"] for row in rows]
    existing = await repository.existing_items(session, connection_id, ids)
    updated = 0
    new: set[uuid.UUID] = set()
    for row in rows:
        prior = existing.get(row["external_id"])
        if prior is None:
            row["id"] = new_id()  # time-ordered: new rows append to the primary key's index
            new.add(row["id"])
        else:
            row["id"] = prior.id  # the upsert keeps the stored id
            if prior.updated_at != row["updated_at"] or prior.deleted_at is not None:
                updated += 1  # changed or revived
    rows = await repository.resolve_parents(session, connection_id, rows)
    # New rows go in a leaf or not as this page says, which saves writing its parents twice
    # (a third of a fresh sync's rows); derived state corrects the rest.
    parents = {row["parent_id"] for row in rows if row["parent_id"] is not None}
    for row in rows:
        row["is_leaf"] = row["id"] not in parents
    await repository.upsert_items(session, rows, keep_last_seen=run_id is None)
    await repository.adopt_children(session, connection_id, rows)
    touched = [row["id"] for row in rows]
    # New rows have no links yet, so neither step looks any up for them (a fresh sync's
    # pages are all new rows), except where a link rule has just made some.
    relinked = await apply_link_rules(session, touched, new=new)
    # The rows just written are not read back: derived state starts from them as stored.
    await derived.refresh(
        session,
        touched,
        leafness_of=[p.parent_id for p in existing.values() if p.parent_id],
        known=_nodes(rows, existing),
        unlinked=new - relinked.items,
        unlinked_from=relinked.unlinked_from,
    )
    return {"fetched": len(rows), "created": len(new), "updated": updated}


async def delete_items(
    session: AsyncSession, connection_id: uuid.UUID, external_ids: Collection[str], now: datetime
) -> int:
    """Mark these items deleted (a provider said so) and update what depends on them."""
    gone = await repository.mark_deleted(session, connection_id, external_ids, now)
    await derived.refresh(session, gone)
    return len(gone)
