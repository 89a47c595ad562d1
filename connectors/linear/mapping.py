"""Linear initiatives, projects and issues to work items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.models import Kind, StatusCategory, WorkItem

# Workflow state types (WorkflowState.type).
ISSUE_STATES = {
    "triage": StatusCategory.todo,
    "backlog": StatusCategory.todo,
    "unstarted": StatusCategory.todo,
    "started": StatusCategory.in_progress,
    "completed": StatusCategory.done,
    "canceled": StatusCategory.canceled,
    "duplicate": StatusCategory.canceled,
}
PROJECT_STATES = {  # ProjectStatusType
    "backlog": StatusCategory.todo,
    "planned": StatusCategory.todo,
    "started": StatusCategory.in_progress,
    "paused": StatusCategory.in_progress,
    "completed": StatusCategory.done,
    "canceled": StatusCategory.canceled,
}
INITIATIVE_STATES = {  # InitiativeStatus
    "Proposed": StatusCategory.todo,
    "Planned": StatusCategory.todo,
    "Active": StatusCategory.in_progress,
    "Completed": StatusCategory.done,
    "Canceled": StatusCategory.canceled,
}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _times(raw: Mapping[str, Any], category: StatusCategory) -> dict[str, datetime | None]:
    created, updated = _time(raw["createdAt"]), _time(raw["updatedAt"])
    finished = _time(raw.get("completedAt")) or _time(raw.get("canceledAt"))
    return {
        "created_at": created,
        "updated_at": updated,
        "started_at": _time(raw.get("startedAt")),
        "resolved_at": finished if category in (StatusCategory.done, StatusCategory.canceled)
        else None,
    }  # fmt: skip


def first_initiative(raw: Mapping[str, Any]) -> str | None:
    """A project's parent among its initiatives: the one it was added to first (ties by
    initiative id). Linear lets a project belong to several; in okr-sync an item has one
    parent, so that its effort is counted once."""
    links = ((raw.get("initiativeToProjects") or {}).get("nodes")) or ()
    ranked = sorted((link["createdAt"], link["initiative"]["id"]) for link in links)
    return ranked[0][1] if ranked else None


def issue(
    raw: Mapping[str, Any], *, team_map: Mapping[str, str], labels: Mapping[str, str]
) -> WorkItem:
    state = raw.get("state") or {}
    category = ISSUE_STATES.get(str(state.get("type")), StatusCategory.todo)
    team = str((raw.get("team") or {}).get("key") or "")
    project = raw.get("project") or {}
    parent = (raw.get("parent") or {}).get("id") or project.get("id")
    return WorkItem(
        external_id=str(raw["id"]),
        key=str(raw["identifier"]),
        url=str(raw.get("url") or ""),
        title=str(raw.get("title") or ""),
        kind=Kind.subtask if raw.get("parent") else Kind.issue,
        status=str(state.get("name") or ""),
        status_category=category,
        team_key=team_map.get(team),
        parent_external_id=parent,
        labels=tuple(labels[i] for i in raw.get("labelIds") or () if i in labels),
        containers=tuple(c for c in (team, project.get("name")) if c),
        estimate=raw.get("estimate"),
        **_times(raw, category),
    )


def project(
    raw: Mapping[str, Any], *, teams: Sequence[str], team_map: Mapping[str, str]
) -> WorkItem:
    status = raw.get("status") or {}
    category = PROJECT_STATES.get(str(status.get("type")), StatusCategory.todo)
    its_teams = [t["key"] for t in ((raw.get("teams") or {}).get("nodes") or ())]
    # A project shared by teams belongs to the first configured team that works on it.
    ours = next((t for t in teams if t in its_teams), None)
    return WorkItem(
        external_id=str(raw["id"]),
        key=str(raw["slugId"]),
        url=str(raw.get("url") or ""),
        title=str(raw.get("name") or ""),
        kind=Kind.epic,
        type_name="Project",
        status=str(status.get("name") or ""),
        status_category=category,
        team_key=team_map.get(ours) if ours else None,
        parent_external_id=first_initiative(raw),
        containers=tuple(sorted(its_teams)),
        **_times(raw, category),
    )


def initiative(raw: Mapping[str, Any]) -> WorkItem:
    category = INITIATIVE_STATES.get(str(raw.get("status")), StatusCategory.todo)
    return WorkItem(
        external_id=str(raw["id"]),
        key=str(raw["slugId"]),
        url=str(raw.get("url") or ""),
        title=str(raw.get("name") or ""),
        kind=Kind.initiative,
        type_name="Initiative",
        status=str(raw.get("status") or ""),
        status_category=category,
        parent_external_id=(raw.get("parentInitiative") or {}).get("id"),
        **_times(raw, category),
    )
