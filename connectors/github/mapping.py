"""GitHub issues to work items."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.models import Kind, StatusCategory, WorkItem

_REPO_URL = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+?)(?:/issues/(?P<number>\d+))?/?$")
# Closed without the work being done: not planned, or a duplicate of another issue.
CANCELED_REASONS = frozenset({"not_planned", "duplicate"})
EPIC_TYPE = "epic"


def repo_of(raw: Mapping[str, Any]) -> str:
    """``owner/name`` of an issue, from its ``repository_url``."""
    found = _REPO_URL.search(str(raw.get("repository_url", "")))
    if found is None:
        raise ValueError(f"issue {raw.get('id')} has no repository_url")
    return found["repo"]


def issue_key(repo: str, number: int | str) -> str:
    return f"{repo}#{number}"


def key_of_url(url: str | None) -> str | None:
    """``owner/name#N`` from an issue's API URL (``parent_issue_url``)."""
    if not url:
        return None
    found = _REPO_URL.search(url)
    if found is None or found["number"] is None:
        return None
    return issue_key(found["repo"], found["number"])


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def status_category(raw: Mapping[str, Any]) -> StatusCategory:
    if raw.get("state") != "closed":
        return StatusCategory.todo
    if raw.get("state_reason") in CANCELED_REASONS:
        return StatusCategory.canceled
    return StatusCategory.done


def normalize(
    raw: Mapping[str, Any],
    *,
    team_map: Mapping[str, str],
    epic_labels: Iterable[str],
    parent_key: str | None = None,
) -> WorkItem:
    """One issue. ``parent_key`` overrides ``parent_issue_url`` when the parent is known
    from the other side (a sub-issue listed under its parent)."""
    repo = repo_of(raw)
    labels = tuple(str(label["name"]) for label in raw.get("labels") or () if label.get("name"))
    type_name = str((raw.get("type") or {}).get("name") or "")
    epic_names = {name.lower() for name in epic_labels}
    is_epic = type_name.lower() == EPIC_TYPE or any(lb.lower() in epic_names for lb in labels)
    milestone = (raw.get("milestone") or {}).get("title")
    category = status_category(raw)
    state = str(raw.get("state", ""))
    reason = raw.get("state_reason")
    created = datetime.fromisoformat(raw["created_at"])
    updated = datetime.fromisoformat(raw["updated_at"])
    teams = {name.lower(): team for name, team in team_map.items()}
    return WorkItem(
        external_id=str(raw["id"]),
        key=issue_key(repo, raw["number"]),
        url=str(raw.get("html_url") or ""),
        title=str(raw.get("title") or ""),
        kind=Kind.epic if is_epic else Kind.issue,
        type_name=type_name,
        status=f"{state} ({reason})" if state == "closed" and reason else state,
        status_category=category,
        team_key=teams.get(repo.lower()),
        parent_key=parent_key or key_of_url(raw.get("parent_issue_url")),
        labels=labels,
        containers=(repo, milestone) if milestone else (repo,),
        created_at=created,
        updated_at=updated,
        # GitHub has no "started" state; the days basis counts from creation.
        resolved_at=_time(raw.get("closed_at")) if category != StatusCategory.todo else None,
    )
