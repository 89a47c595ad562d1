"""Jira issues to work items: pure functions over the REST shapes (Cloud and Data Center)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from connectors.models import Kind, StatusCategory, WorkItem

# Resolutions that close an issue without doing it. Jira has no flag for this, so the
# names Jira and common workflows ship with are matched, case-insensitively.
CANCELED_RESOLUTIONS = frozenset(
    {
        "won't do", "won't fix", "wont do", "wont fix", "duplicate", "declined", "rejected",
        "cannot reproduce", "can't reproduce", "abandoned", "obsolete", "canceled", "cancelled",
        "not a bug", "incomplete", "invalid", "out of scope",
    }
)  # fmt: skip

_DATETIME = TypeAdapter(datetime)


def timestamp(value: Any) -> datetime:
    """A Jira timestamp (``2024-05-01T09:30:00.000+0200``) in UTC. The standard parser reads
    Jira's form a few times faster than pydantic; anything else goes to pydantic."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = _DATETIME.validate_python(value)
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed


@dataclass(frozen=True)
class FieldIds:
    """The site-specific custom field ids the mapping reads."""

    story_points: str | None = None
    epic_link: str | None = None
    parent_link: str | None = None

    def requested(self) -> list[str]:
        """The fields to ask Jira for: only what the mapping reads."""
        base = [
            "summary", "issuetype", "status", "resolution", "resolutiondate", "created",
            "updated", "labels", "project", "parent", "statuscategorychangedate",
        ]  # fmt: skip
        return base + [f for f in (self.story_points, self.epic_link, self.parent_link) if f]


def status_category(fields: Mapping[str, Any]) -> StatusCategory:
    category = (fields.get("status") or {}).get("statusCategory", {}).get("key")
    if category == "done":
        resolution = ((fields.get("resolution") or {}).get("name") or "").strip().lower()
        return (
            StatusCategory.canceled if resolution in CANCELED_RESOLUTIONS else StatusCategory.done
        )
    if category == "indeterminate":
        return StatusCategory.in_progress
    return StatusCategory.todo


def kind(issuetype: Mapping[str, Any]) -> Kind:
    level = issuetype.get("hierarchyLevel")
    if issuetype.get("subtask") or level == -1:
        return Kind.subtask
    if isinstance(level, int) and level >= 2:
        return Kind.initiative
    if level == 1 or str(issuetype.get("name", "")).lower() == "epic":
        return Kind.epic
    return Kind.issue


def estimate(value: Any) -> float | None:
    """Story points arrive as a number, a numeric string, or nothing. "NaN" and "inf"
    parse as floats but are no estimate: they would poison every sum they join."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        points = float(value)
    elif isinstance(value, str):
        try:
            points = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return points if math.isfinite(points) else None


def _reference(value: Any) -> tuple[str | None, str | None]:
    """(id, key) from a parent-ish field: an object with id/key, or a bare key."""
    if isinstance(value, Mapping):
        ref_id = value.get("id")
        return (str(ref_id) if ref_id is not None else None), value.get("key")
    if isinstance(value, str) and value:
        return None, value
    return None, None


def parent_reference(fields: Mapping[str, Any], ids: FieldIds) -> tuple[str | None, str | None]:
    """The parent as (id, key): ``parent`` (Cloud, sub-tasks everywhere), else the Data Center
    Epic Link (story to epic), else Parent Link (epic and above)."""
    for candidate in (
        fields.get("parent"),
        *(fields.get(f) for f in (ids.epic_link, ids.parent_link) if f),
    ):
        ref_id, key = _reference(candidate)
        if ref_id or key:
            return ref_id, key
    return None, None


def started_at(
    histories: Iterable[Mapping[str, Any]], in_progress: frozenset[str]
) -> datetime | None:
    """When the issue first moved into an in-progress status, from its changelog.

    Jira does not promise an order for histories, so the earliest matching one wins.
    """
    moments = [
        timestamp(history["created"])
        for history in histories
        if any(
            item.get("field") == "status" and str(item.get("to")) in in_progress
            for item in history.get("items", ())
        )
    ]
    return min(moments) if moments else None


def _when(value: Any) -> datetime | None:
    return timestamp(value) if value else None


def normalize(
    raw: Mapping[str, Any],
    *,
    site: str,
    ids: FieldIds,
    team_map: Mapping[str, str],
    started: datetime | None = None,
) -> WorkItem:
    """One Jira issue (REST v2 or v3 shape) as a work item."""
    fields = raw["fields"]
    project = (fields.get("project") or {}).get("key") or raw["key"].split("-")[0]
    parent_id, parent_key = parent_reference(fields, ids)
    category = status_category(fields)
    resolved = None
    if category in (StatusCategory.done, StatusCategory.canceled):
        # Workflows without a resolution leave resolutiondate empty; the move into the done
        # category is then the best record of when the work ended.
        resolved = _when(fields.get("resolutiondate") or fields.get("statuscategorychangedate"))
    return WorkItem(
        external_id=str(raw["id"]),
        key=raw["key"],
        url=f"{site.rstrip('/')}/browse/{raw['key']}",
        title=fields.get("summary") or "",
        kind=kind(fields.get("issuetype") or {}),
        type_name=(fields.get("issuetype") or {}).get("name", ""),
        status=(fields.get("status") or {}).get("name", ""),
        status_category=category,
        team_key=team_map.get(project),
        parent_external_id=parent_id,
        parent_key=None if parent_id else parent_key,
        labels=tuple(fields.get("labels") or ()),
        containers=(project,),
        estimate=estimate(fields.get(ids.story_points)) if ids.story_points else None,
        created_at=timestamp(fields["created"]),
        updated_at=timestamp(fields["updated"]),
        started_at=started,
        resolved_at=resolved,
    )
