"""Rules for key results and check-ins, and the progress every response carries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from service.derived import state as derived
from service.errors import InvalidInput, NotFound
from service.key_results import repository
from service.key_results.progress import linked_progress, manual_progress
from service.key_results.schemas import (
    CheckInCreate,
    CheckInOut,
    KeyResultCreate,
    KeyResultOut,
    KeyResultUpdate,
    ProgressMode,
)
from service.links import service as links
from service.models import CheckIn, KeyResult, KeyResultWatch, Objective
from service.pagination import Page, PageParams
from service.periods import service as periods
from service.teams import service as teams
from service.webhooks import outbox

# A reading may carry a client's clock, which can run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ProgressFacts:
    """What the progress of a set of key results is computed from, read in two queries."""

    latest: dict[uuid.UUID, CheckIn]
    linked: dict[uuid.UUID, repository.LinkedEffort]

    @classmethod
    async def read(cls, session: AsyncSession, key_results: Sequence[KeyResult]) -> ProgressFacts:
        ids = [kr.id for kr in key_results]
        linked_ids = [kr.id for kr in key_results if kr.progress_mode == "linked"]
        return cls(
            latest=await repository.latest_check_ins(session, ids),
            linked=await repository.linked_efforts(session, linked_ids),
        )


def progress_value(
    *,
    mode: str,
    basis: str,
    start: float,
    target: float,
    current: float,
    linked: repository.LinkedEffort | None,
) -> float:
    """Section 3, item 8; ``current`` is the latest check-in's value where there is one."""
    if mode == "linked":
        return linked_progress_of(basis, linked or repository.NO_EFFORT)
    return manual_progress(start=start, target=target, current=current)


def progress_from(inputs: Sequence[Any]) -> float:
    """The progress of a row of ``repository.progress_inputs()``, as ``progress_value``
    computes it, for queries over many KRs."""
    mode, basis, start, target, current, *sums = inputs
    if mode != "linked":
        return manual_progress(start=start, target=target, current=current)
    return linked_progress_of(basis, sums)


def linked_progress_of(basis: str, sums: Sequence[Any]) -> float:
    """A linked KR's progress on its basis, from its four effort sums: a ``LinkedEffort``,
    or its efforts row as a query reads it (all NULL with no row: no work counts yet). A
    roll-up runs this for each of its linked KRs (a portfolio's are thousands), so it takes
    the sums as they are instead of building a ``LinkedEffort`` of them."""
    done_count, all_count, done_points, all_points = (
        repository.NO_EFFORT if sums[0] is None else sums
    )
    if basis == "points":
        return linked_progress(done_effort=done_points, total_effort=all_points)
    return linked_progress(done_effort=done_count, total_effort=all_count)


def progress_of(key_result: KeyResult, facts: ProgressFacts) -> float:
    latest = facts.latest.get(key_result.id)
    return progress_value(
        mode=key_result.progress_mode,
        basis=key_result.progress_basis,
        start=key_result.start_value,
        target=key_result.target_value,
        current=latest.value if latest is not None else key_result.current_value,
        linked=facts.linked.get(key_result.id),
    )


def out(key_result: KeyResult, facts: ProgressFacts) -> KeyResultOut:
    latest = facts.latest.get(key_result.id)
    return KeyResultOut.model_validate(
        {
            **key_result.model_dump(),
            "progress": progress_of(key_result, facts),
            "last_check_in": CheckInOut.model_validate(latest) if latest else None,
        }
    )


async def outs(session: AsyncSession, key_results: Sequence[KeyResult]) -> list[KeyResultOut]:
    facts = await ProgressFacts.read(session, key_results)
    return [out(kr, facts) for kr in key_results]


async def get(*, session: AsyncSession, key_result_id: uuid.UUID) -> KeyResult:
    key_result = await repository.get(session, key_result_id)
    if key_result is None:
        raise NotFound(f"no key result {key_result_id}")
    return key_result


async def _objective_exists(session: AsyncSession, objective_id: uuid.UUID) -> None:
    if await session.get(Objective, objective_id) is None:
        raise InvalidInput.at("objective_id", f"no objective {objective_id}")


async def create(*, session: AsyncSession, data: KeyResultCreate) -> KeyResultOut:
    await _objective_exists(session, data.objective_id)
    key_result = KeyResult(
        objective_id=data.objective_id,
        title=data.title,
        start_value=data.start_value,
        target_value=data.target_value,
        current_value=data.start_value if data.current_value is None else data.current_value,
        unit=data.unit,
        progress_mode=data.progress_mode,
        progress_basis=data.progress_basis,
    )
    session.add(key_result)
    await session.flush()
    created = (await outs(session, [key_result]))[0]
    # The baseline key_result.progress_changed compares with: where it starts is no change.
    session.add(KeyResultWatch(key_result_id=key_result.id, progress=created.progress))
    return created


async def update(
    *, session: AsyncSession, key_result: KeyResult, data: KeyResultUpdate
) -> KeyResultOut:
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise InvalidInput.at(field, f"{field} cannot be null")
    if "objective_id" in changes:
        await _objective_exists(session, changes["objective_id"])
    start = changes.get("start_value", key_result.start_value)
    target = changes.get("target_value", key_result.target_value)
    if start == target:
        raise InvalidInput.at("target_value", "target_value must differ from start_value")
    for field, value in changes.items():
        setattr(key_result, field, value)
    key_result.updated_at = datetime.now(UTC)
    session.add(key_result)
    await session.flush()
    outbox.request_scan(session)  # a new target or mode moves progress
    return (await outs(session, [key_result]))[0]


async def list_page(
    *,
    session: AsyncSession,
    page: PageParams,
    objective_id: uuid.UUID | None,
    period: str | None,
    team: str | None,
    progress_mode: ProgressMode | None,
) -> Page[KeyResultOut]:
    period_row = await periods.resolver.from_query(session, period, "period")
    team_row = await teams.resolver.from_query(session, team, "team")
    rows = await repository.list_page(
        session,
        page,
        objective_id=objective_id,
        period_id=period_row.id if period_row else None,
        team_id=team_row.id if team_row else None,
        progress_mode=progress_mode,
    )
    rows, next_cursor = page.split(rows, lambda kr: kr.id)
    return Page(items=await outs(session, rows), next_cursor=next_cursor)


async def delete(*, session: AsyncSession, key_result: KeyResult) -> None:
    """Delete the KR; work that counted toward it falls back to what its ancestors or the
    classification rules say."""
    linked = await links.sources_of(session, [key_result.id])
    await session.delete(key_result)
    await session.flush()
    await derived.refresh(session, linked)


async def check_in(
    *, session: AsyncSession, key_result: KeyResult, data: CheckInCreate
) -> CheckInOut:
    now = datetime.now(UTC)
    when = data.created_at.astimezone(UTC) if data.created_at else now
    if when > now + CLOCK_SKEW:
        raise InvalidInput.at("created_at", "a check-in cannot be dated in the future")
    row = CheckIn(
        key_result_id=key_result.id,
        value=data.value,
        confidence=data.confidence,
        note=data.note,
        created_at=when,
    )
    session.add(row)
    await session.flush()
    outbox.request_scan(session)  # progress may have moved; a stale KR is fresh again
    return CheckInOut.model_validate(row)


async def list_check_ins(
    *, session: AsyncSession, page: PageParams, key_result: KeyResult
) -> Page[CheckInOut]:
    rows = await repository.list_check_ins(session, page, key_result.id)
    rows, next_cursor = page.split(rows, lambda c: c.id)
    return Page(items=[CheckInOut.model_validate(c) for c in rows], next_cursor=next_cursor)
