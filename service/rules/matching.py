"""What a rule's ``match`` means (DESIGN section 4): every list given shares at least one value
with the item. Values compare case-insensitively: "Bug" in a rule matches Jira's "bug"."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field, StringConstraints, model_validator
from sqlmodel import col

from connectors import Kind
from service.models import WorkItem
from service.schemas import NOT_BLANK, RequestModel

Value = Annotated[str, StringConstraints(min_length=1, max_length=200), NOT_BLANK]
Values = Annotated[list[Value], Field(min_length=1, max_length=200)]

FIELDS = ("labels", "type_names", "kinds", "teams", "containers")


class Match(RequestModel):
    labels: Values | None = None
    type_names: Values | None = None
    kinds: Annotated[list[Kind], Field(min_length=1)] | None = None
    teams: Values | None = Field(default=None, description="Team keys, as the team_map names them.")
    containers: Values | None = Field(
        default=None,
        description="Jira project key; Linear team or project key; GitHub owner/name or milestone.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.model_fields_set & set(FIELDS) or all(
            getattr(self, name) is None for name in FIELDS
        ):
            raise ValueError(f"give at least one of {', '.join(FIELDS)}")
        return self

    def stored(self) -> dict[str, list[str]]:
        return {
            name: [str(v) for v in values]
            for name in FIELDS
            if (values := getattr(self, name)) is not None
        }


@dataclass(frozen=True, slots=True)
class Subject:
    """The facts about an item that rules match on."""

    labels: frozenset[str]
    type_name: str
    kind: str
    team_key: str | None
    containers: frozenset[str]

    @classmethod
    def of(
        cls,
        *,
        labels: Iterable[str],
        type_name: str,
        kind: str,
        team_key: str | None,
        containers: Iterable[str],
    ) -> Subject:
        return _subject(tuple(labels), type_name, kind, team_key, tuple(containers))


# A sync's items share a few subjects (a project's labels and types recur), and subjects
# are immutable: folding each item's values again took a tenth of the time of storing it.
@lru_cache(maxsize=4096)
def _subject(
    labels: tuple[str, ...],
    type_name: str,
    kind: str,
    team_key: str | None,
    containers: tuple[str, ...],
) -> Subject:
    return Subject(
        labels=frozenset(v.casefold() for v in labels),
        type_name=type_name.casefold(),
        kind=kind,
        team_key=team_key.casefold() if team_key else None,
        containers=frozenset(v.casefold() for v in containers),
    )


SUBJECT_COLUMNS = (
    col(WorkItem.labels),
    col(WorkItem.type_name),
    col(WorkItem.kind),
    col(WorkItem.team_key),
    col(WorkItem.containers),
)


def subject_of(row: Sequence[Any]) -> Subject:
    """A Subject from a row selected with SUBJECT_COLUMNS."""
    labels, type_name, kind, team_key, containers = row
    return Subject.of(
        labels=labels or (),
        type_name=type_name,
        kind=kind,
        team_key=team_key,
        containers=containers or (),
    )


@dataclass(frozen=True, slots=True)
class Matcher:
    labels: frozenset[str] | None
    type_names: frozenset[str] | None
    kinds: frozenset[str] | None
    teams: frozenset[str] | None
    containers: frozenset[str] | None

    @classmethod
    def of(cls, match: Mapping[str, Sequence[str]]) -> Matcher:
        def values(name: str) -> frozenset[str] | None:
            given = match.get(name)
            return None if given is None else frozenset(v.casefold() for v in given)

        return cls(*(values(name) for name in FIELDS))

    def __call__(self, item: Subject) -> bool:
        return (
            (self.labels is None or not self.labels.isdisjoint(item.labels))
            and (self.type_names is None or item.type_name in self.type_names)
            and (self.kinds is None or item.kind in self.kinds)
            and (self.teams is None or item.team_key in self.teams)
            and (self.containers is None or not self.containers.isdisjoint(item.containers))
        )


def _json_contains_any(column: Any, values: Iterable[str]) -> Any | None:
    """A coarse SQL test that a JSON list of strings may hold one of ``values``; None when it
    cannot be expressed (non-ASCII case folding differs between Python and SQL)."""
    patterns = []
    for value in values:
        if not value.isascii():
            return None
        quoted = json.dumps(value).lower()
        escaped = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        patterns.append(escaped)
    text = sa.func.lower(sa.cast(column, sa.Text))
    return sa.or_(*(text.like(f"%{p}%", escape="\\") for p in patterns))


def prefilter(match: Mapping[str, Sequence[str]]) -> list[Any]:
    """SQL conditions that every item the match accepts meets: they narrow the rows read, and
    the Matcher decides."""
    conditions: list[Any] = []
    if (kinds := match.get("kinds")) is not None:
        conditions.append(col(WorkItem.kind).in_(list(kinds)))
    if (type_names := match.get("type_names")) is not None and all(v.isascii() for v in type_names):
        conditions.append(sa.func.lower(WorkItem.type_name).in_([v.lower() for v in type_names]))
    if (teams := match.get("teams")) is not None and all(v.isascii() for v in teams):
        conditions.append(sa.func.lower(WorkItem.team_key).in_([v.lower() for v in teams]))
    for name, column in (("labels", WorkItem.labels), ("containers", WorkItem.containers)):
        if (given := match.get(name)) is not None:
            condition = _json_contains_any(column, given)
            if condition is not None:
                conditions.append(condition)
    return conditions
