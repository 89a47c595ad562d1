"""Events found by comparing the portfolio with what was last announced (DESIGN section 6).

Many writes can unlink an epic or move a KR's progress (links, rules, syncs, re-parenting,
deletions, check-ins), so the events are not raised at each write but found by a scan that each
such write asks for and that also runs on a timer. The scan compares the current state with its
watch tables and writes the events together with the updated watches in one transaction: an
event goes out once per change, and a crash either records both or neither.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.catalog import current as current_catalog
from service.db import Prepared, Statement, among, chunks, fetch_rows, run
from service.key_results import repository as key_result_rows
from service.key_results import service as key_results
from service.models import (
    EpicWatch,
    KeyResult,
    KeyResultEffort,
    KeyResultWatch,
    Objective,
    Period,
    Team,
    TeamShareWatch,
    WorkItem,
)
from service.rollups import queries
from service.rollups.service import period_ref, team_shares
from service.services import Services
from service.settings import Settings
from service.teams import service as teams
from service.webhooks.events import EventType
from service.webhooks.outbox import Event, emit
from service.work_items import repository as work_item_rows
from service.work_items import service as work_items

logger = logging.getLogger(__name__)

OPEN = ("todo", "in_progress")
# Progress is a float computed from sums; smaller moves are rounding, not change.
PROGRESS_EPSILON = 1e-9
SCAN_LOCK = 0x6F6B7273 + 1  # any constant of our own (the migration lock is the one before)
_SCAN_TURN = Statement(sa.text("SELECT pg_advisory_xact_lock(:id)").bindparams(id=SCAN_LOCK))
SHARE_BASIS: queries.Basis = "count"  # the roll-up API's default basis


async def _unlinked_open_epics(session: AsyncSession) -> set[uuid.UUID]:
    rows = await session.exec(
        select(WorkItem.id).where(
            WorkItem.kind == "epic",
            col(WorkItem.deleted_at).is_(None),
            col(WorkItem.status_category).in_(OPEN),
            sa.or_(col(WorkItem.category).is_(None), col(WorkItem.category) != "strategic"),
        )
    )
    return set(rows.all())


async def _item_events(
    session: AsyncSession, ids: Sequence[uuid.UUID], kind: EventType, settings: Settings
) -> list[Event]:
    events = []
    for batch in chunks(ids):
        for row in await work_item_rows.get_many(session, batch):
            item = work_items.out(row, settings.default_category)
            events.append(
                Event(kind, {"work_item": item.model_dump(mode="json")}, team_id=item.team_id)
            )
    return events


async def scan_epics(session: AsyncSession, settings: Settings, now: datetime) -> list[Event]:
    """``epic.unlinked`` once an open epic has had no effective link for the grace period;
    ``epic.linked`` when an epic that was announced so gains one."""
    unlinked = await _unlinked_open_epics(session)
    watches = {w.work_item_id: w for w in (await session.exec(select(EpicWatch))).all()}
    for item_id in unlinked - watches.keys():
        watches[item_id] = EpicWatch(work_item_id=item_id, unlinked_since=now)
        session.add(watches[item_id])
    gone = [w for item_id, w in watches.items() if item_id not in unlinked]
    announced_gone = [w.work_item_id for w in gone if w.notified_at is not None]
    linked = (
        set(
            (
                await session.exec(
                    select(WorkItem.id).where(
                        col(WorkItem.id).in_(announced_gone),
                        col(WorkItem.deleted_at).is_(None),
                        WorkItem.category == "strategic",
                    )
                )
            ).all()
        )
        if announced_gone
        else set()
    )
    for watch in gone:
        await session.delete(watch)
    grace = timedelta(hours=settings.unlinked_grace_hours)
    due = sorted(
        item_id
        for item_id in unlinked
        if watches[item_id].notified_at is None and now - watches[item_id].unlinked_since >= grace
    )
    for item_id in due:
        watches[item_id].notified_at = now
        session.add(watches[item_id])
    return [
        *await _item_events(session, due, EventType.epic_unlinked, settings),
        *await _item_events(session, sorted(linked), EventType.epic_linked, settings),
    ]


def _current(periods: Sequence[Period], today: date) -> list[Period]:
    return [p for p in periods if p.start <= today < p.end]


async def _objective_teams(
    session: AsyncSession, key_results_: Sequence[KeyResult]
) -> dict[uuid.UUID, uuid.UUID | None]:
    ids = {kr.objective_id for kr in key_results_}
    if not ids:
        return {}
    rows = await session.exec(
        select(Objective.id, Objective.team_id).where(col(Objective.id).in_(ids))
    )
    return dict(rows.all())


# Every KR with what its progress is computed from, in one query with no list of ids.
_PROGRESS_INPUTS = Prepared(
    sa.select(col(KeyResult.id), *key_result_rows.progress_inputs()).outerjoin(
        KeyResultEffort, col(KeyResultEffort.key_result_id) == KeyResult.id
    )
)


async def _progress_now(session: AsyncSession) -> dict[uuid.UUID, float]:
    """Every KR's progress, from plain rows: objects of every KR and watch took most of a
    scan (43 ms of 47 at 1,800 KRs), and the scan runs within seconds of every write."""
    rows = await fetch_rows(session, _PROGRESS_INPUTS)
    return {row[0]: key_results.progress_from(row[1:]) for row in rows}


_WATCHED = Prepared(sa.select(col(KeyResultWatch.key_result_id), col(KeyResultWatch.progress)))


async def scan_progress(session: AsyncSession) -> list[Event]:
    """``key_result.progress_changed`` when a KR's progress differs from the last seen; a KR
    seen for the first time only sets the baseline."""
    progress = await _progress_now(session)
    watched = dict(await fetch_rows(session, _WATCHED))
    moved = {}
    for kr_id, now in progress.items():
        previous = watched.get(kr_id)
        if previous is None:
            session.add(KeyResultWatch(key_result_id=kr_id, progress=now))
        elif abs(previous - now) > PROGRESS_EPSILON:
            moved[kr_id] = previous
    if not moved:
        return []
    krs = list(
        (
            await session.exec(
                select(KeyResult)
                .where(among(session, col(KeyResult.id), moved))
                .order_by(col(KeyResult.id))
            )
        ).all()
    )
    watches = await session.exec(
        select(KeyResultWatch).where(among(session, col(KeyResultWatch.key_result_id), moved))
    )
    watch_of = {w.key_result_id: w for w in watches.all()}
    facts = await key_results.ProgressFacts.read(session, krs)
    teams_of = await _objective_teams(session, krs)
    events = []
    for kr in krs:
        watch = watch_of.get(kr.id)
        if watch is None:
            continue  # the KR went since its progress was read
        # From the facts the event shows, read after the bulk pass: a check-in committed in
        # between then moves the watch and the announced progress alike.
        watch.progress = key_results.progress_of(kr, facts)
        session.add(watch)
        events.append(
            Event(
                EventType.key_result_progress_changed,
                {
                    "key_result": key_results.out(kr, facts).model_dump(mode="json"),
                    "previous_progress": moved[kr.id],
                },
                team_id=teams_of.get(kr.objective_id),
            )
        )
    return events


async def scan_stale(session: AsyncSession, settings: Settings, now: datetime) -> list[Event]:
    """``key_result.stale`` once per stretch without check-ins longer than the limit, for KRs
    of periods under way (the insight of the same name)."""
    periods = _current(list((await session.exec(select(Period))).all()), now.date())
    if not periods:
        return []
    krs = list(
        (
            await session.exec(
                select(KeyResult)
                .join(Objective, col(Objective.id) == KeyResult.objective_id)
                .where(col(Objective.period_id).in_([p.id for p in periods]))
                .order_by(col(KeyResult.id))
            )
        ).all()
    )
    latest = await key_result_rows.latest_check_ins(session, [kr.id for kr in krs])
    watches = {w.key_result_id: w for w in (await session.exec(select(KeyResultWatch))).all()}
    facts = await key_results.ProgressFacts.read(session, krs)
    teams_of = await _objective_teams(session, krs)
    limit = timedelta(days=settings.stale_check_in_days)
    events = []
    for kr in krs:
        check_in = latest.get(kr.id)
        last = check_in.created_at if check_in else kr.created_at
        if now - last <= limit:
            continue
        watch = watches.get(kr.id) or KeyResultWatch(
            key_result_id=kr.id, progress=key_results.progress_of(kr, facts)
        )
        if watch.stale_notified_at is not None and watch.stale_notified_at >= last:
            continue  # announced already, and no check-in since
        watch.stale_notified_at = now
        session.add(watch)
        events.append(
            Event(
                EventType.key_result_stale,
                {
                    "key_result": key_results.out(kr, facts).model_dump(mode="json"),
                    "last_check_in_at": check_in.created_at.isoformat() if check_in else None,
                    "days": (now - last).days,
                    "limit_days": settings.stale_check_in_days,
                },
                team_id=teams_of.get(kr.objective_id),
            )
        )
    return events


async def scan_shares(session: AsyncSession, settings: Settings, now: datetime) -> list[Event]:
    """``team.strategic_share_below_target`` when a team's share for a period under way drops
    below its target; again only after it has been back at or above it."""
    periods = _current(list((await session.exec(select(Period))).all()), now.date())
    if not periods:
        return []
    tree = (await current_catalog(session)).tree
    watches = {
        (w.team_id, w.period_id): w for w in (await session.exec(select(TeamShareWatch))).all()
    }
    events = []
    for period in periods:
        shares = await team_shares(
            session, period, tree, SHARE_BASIS, settings.default_category.value
        )
        for team_id, share in shares.items():
            team = await session.get(Team, team_id)
            assert team is not None
            assert team.strategic_target is not None
            below = share < team.strategic_target
            watch = watches.get((team_id, period.id))
            was_below = watch.below if watch else False
            if watch is None:
                watch = TeamShareWatch(team_id=team_id, period_id=period.id, below=below)
            watch.below = below
            session.add(watch)
            if below and not was_below:
                events.append(
                    Event(
                        EventType.team_strategic_share_below_target,
                        {
                            "team": (await teams.to_out(session, team)).model_dump(mode="json"),
                            "share": share,
                            "target": team.strategic_target,
                            "basis": SHARE_BASIS,
                            "period": period_ref(period).model_dump(mode="json"),
                        },
                        team_id=team_id,
                    )
                )
    return events


async def run_scans(services: Services, *, stale: bool = False) -> int:
    """One scan of everything, in one transaction; returns how many events were found."""
    now = datetime.now(UTC)
    async with services.unit_of_work() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Scans on several workers take turns: each compares against what the one before
            # it committed, so none announces what another just did.
            await run(session, _SCAN_TURN)
        events: list[Event] = []
        events += await scan_epics(session, services.settings, now)
        events += await scan_progress(session)
        events += await scan_shares(session, services.settings, now)
        if stale:
            events += await scan_stale(session, services.settings, now)
        written = await emit(session, events, now)
    if events:
        logger.info("events.found", extra={"events": len(events), "messages": written})
    return len(events)
