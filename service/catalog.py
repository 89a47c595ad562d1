"""What a process keeps of the OKR catalog (the org tree, the periods, and the labels and
progress inputs of key results) while the database's catalog token says it is current.

Every roll-up and trend names a period and a team, and a roll-up lists its KRs under their
objectives' titles, periods and teams: read for each request, those rows were most of a
roll-up's database time and much of its Python, though they change only when someone edits
the OKRs or the org. Triggers replace the token on every write to the tables they come from
(migration e5a1c3b7d9f2), so a request reads the one-row token, and reads the tables again
only when it differs from the one it kept them with. Read after the token, they are never
older than it: at worst newer, and then the next request reads them again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import READS_ONLY, Prepared, fetch_rows
from service.key_results.progress import manual_progress
from service.key_results.repository import latest_value
from service.models import CatalogVersion, KeyResult, Objective, Period, Team
from service.periods import service as periods
from service.refs import as_uuid
from service.teams import service as teams


class TeamRow(NamedTuple):
    id: uuid.UUID
    key: str
    name: str
    parent_id: uuid.UUID | None
    strategic_target: float | None


class PeriodRow(NamedTuple):
    id: uuid.UUID
    name: str
    start: date
    end: date


class KeyResultLabel(NamedTuple):
    """What a roll-up shows of a KR besides its effort, and what its progress needs besides
    its linked effort: ``progress`` is a manual KR's already (it depends on nothing else).
    Ids are kept as text too: asyncpg's UUIDs are a subclass that orjson writes only through
    a Python fallback, one call per id of a portfolio's thousands."""

    id: str
    title: str
    objective_id: uuid.UUID
    basis: str
    progress: float | None  # None: linked, from its efforts row


class ObjectiveLabel(NamedTuple):
    id: str
    title: str
    period: str
    team: str | None


@dataclass(frozen=True, slots=True)
class TeamTree:
    """The org tree, read whole: it is small, and subtrees are then set lookups, each
    worked out once for the tree (it is kept while the catalog is)."""

    teams: Mapping[uuid.UUID, TeamRow]
    children: Mapping[uuid.UUID | None, list[TeamRow]]
    keys: Mapping[str, TeamRow]
    _subtrees: dict[uuid.UUID, frozenset[uuid.UUID]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Sequence[Any]) -> TeamTree:
        teams = [TeamRow(*row) for row in rows]
        children: dict[uuid.UUID | None, list[TeamRow]] = defaultdict(list)
        for team in teams:
            children[team.parent_id].append(team)
        # A plain dict: a lookup of a team with no children must not insert one.
        return cls({t.id: t for t in teams}, dict(children), {t.key: t for t in teams})

    def find(self, ref: str) -> TeamRow | None:
        """The team ``ref`` names by id or key, as teams.resolver finds it."""
        ref_id = as_uuid(ref)
        return self.teams.get(ref_id) if ref_id else self.keys.get(ref)

    def subtree(self, root: uuid.UUID) -> frozenset[uuid.UUID]:
        found = self._subtrees.get(root)
        if found is None:
            members, stack = set(), [root]
            while stack:
                team_id = stack.pop()
                if team_id not in members:
                    members.add(team_id)
                    stack.extend(child.id for child in self.children.get(team_id, ()))
            found = self._subtrees[root] = frozenset(members)
        return found


_TOKEN = Prepared(sa.select(col(CatalogVersion.token)))
TOKEN = sa.select(col(CatalogVersion.token)).scalar_subquery()
_TEAMS = Prepared(
    sa.select(
        col(Team.id), col(Team.key), col(Team.name), col(Team.parent_id),
        col(Team.strategic_target),
    ).order_by(col(Team.key))
)  # fmt: skip
_PERIODS = Prepared(sa.select(col(Period.id), col(Period.name), col(Period.start), col(Period.end)))
_KEY_RESULTS = Prepared(
    sa.select(
        col(KeyResult.id), col(KeyResult.title), col(KeyResult.objective_id),
        col(KeyResult.progress_mode), col(KeyResult.progress_basis),
        col(KeyResult.start_value), col(KeyResult.target_value),
        sa.func.coalesce(latest_value(col(KeyResult.id)), col(KeyResult.current_value)),
        col(Objective.title), col(Period.name), col(Team.key),
    )
    .join(Objective, col(Objective.id) == KeyResult.objective_id)
    .join(Period, col(Period.id) == Objective.period_id)
    .outerjoin(Team, col(Team.id) == Objective.team_id)
)  # fmt: skip


@dataclass(slots=True)
class KeyResultLabels:
    key_results: dict[uuid.UUID, KeyResultLabel]
    objectives: dict[uuid.UUID, ObjectiveLabel]

    @classmethod
    async def read(cls, session: AsyncSession) -> KeyResultLabels:
        labels = cls({}, {})
        for row in await fetch_rows(session, _KEY_RESULTS):
            kr, title, objective, mode, basis, start, target, current = row[:8]
            progress = (
                None if mode == "linked"
                else manual_progress(start=start, target=target, current=current)
            )  # fmt: skip
            labels.key_results[kr] = KeyResultLabel(str(kr), title, objective, basis, progress)
            labels.objectives[objective] = ObjectiveLabel(str(objective), *row[8:])
        return labels


@dataclass(slots=True)
class Catalog:
    """The catalog as of ``token``; the KRs' labels are read the first time they are asked
    for, since only roll-ups need them."""

    token: str
    tree: TeamTree
    periods: Mapping[uuid.UUID, PeriodRow]
    period_names: Mapping[str, PeriodRow]
    _labels: KeyResultLabels | None = field(default=None)

    def period(self, ref: str) -> PeriodRow | None:
        """The period ``ref`` names by id or name, as periods.resolver finds it."""
        ref_id = as_uuid(ref)
        return self.periods.get(ref_id) if ref_id else self.period_names.get(ref)

    async def labels(self, session: AsyncSession) -> KeyResultLabels:
        if self._labels is None:
            self._labels = await KeyResultLabels.read(session)
        return self._labels


@dataclass(slots=True)
class _Kept:
    catalog: Catalog | None = None


_kept = _Kept()


async def team_named(session: AsyncSession, catalog: Catalog, ref: str) -> tuple[TeamRow, Catalog]:
    """The team ``ref`` names and a catalog that holds it. One ``catalog`` does not hold gets
    the resolver's answer: a 404, or the team, made since ``catalog`` was read, with the
    catalog read again."""
    team = catalog.tree.find(ref)
    if team is not None:
        return team, catalog
    made = await teams.resolver.from_query(session, ref, "team")
    assert made is not None
    found = TeamRow(made.id, made.key, made.name, made.parent_id, made.strategic_target)
    return found, await current(session)


async def period_named(
    session: AsyncSession, catalog: Catalog, ref: str
) -> tuple[PeriodRow, Catalog]:
    """The period ``ref`` names and a catalog that holds it, as ``team_named`` finds a team."""
    period = catalog.period(ref)
    if period is not None:
        return period, catalog
    made = await periods.resolver.from_query(session, ref, "period")
    assert made is not None
    return PeriodRow(made.id, made.name, made.start, made.end), await current(session)


_OFFERED = "catalog_token"


def offer_token(session: AsyncSession, token: str | None) -> None:
    """The token as a statement just read it beside its own columns (the request's API
    token's): the next ``current`` of a session that only reads takes it instead of a round
    trip of its own. A session that writes may change the catalog after it, so it reads."""
    if token is not None and session.info.get(READS_ONLY):
        session.info[_OFFERED] = token


async def current(session: AsyncSession) -> Catalog:
    """The catalog as the database holds it now: the one kept, if its token is current. An
    offered token serves once: the fallbacks of ``team_named`` and ``period_named`` read anew."""
    token = session.info.pop(_OFFERED, None)
    if token is None:
        token = (await fetch_rows(session, _TOKEN))[0][0]
    kept = _kept.catalog
    if kept is not None and kept.token == token:
        return kept
    periods = [PeriodRow(*row) for row in await fetch_rows(session, _PERIODS)]
    catalog = Catalog(
        token,
        TeamTree.of(await fetch_rows(session, _TEAMS)),
        {p.id: p for p in periods},
        {p.name: p for p in periods},
    )
    _kept.catalog = catalog
    return catalog
