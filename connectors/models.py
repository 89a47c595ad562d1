"""What connectors yield: provider-neutral work items, in pages with a resumable cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Kind(StrEnum):
    initiative = "initiative"
    epic = "epic"
    issue = "issue"
    subtask = "subtask"


class StatusCategory(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"
    canceled = "canceled"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # connectors that parse their timestamps hand them over in UTC
        return value
    if value.tzinfo is None:
        raise ValueError("provider timestamps must carry an offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class WorkItem(BaseModel):
    """One epic, project, issue or sub-task, as every provider's is normalised to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: str = Field(min_length=1, max_length=200)
    key: str = Field(min_length=1, max_length=200, description="PAY-12, ENG-42, acme/api#12")
    url: str = ""
    title: str = ""
    kind: Kind
    type_name: str = ""
    status: str = ""
    status_category: StatusCategory
    team_key: str | None = Field(default=None, description="Our team key, via the team_map.")
    parent_external_id: str | None = None
    parent_key: str | None = Field(
        default=None,
        description="The parent's key, when the provider names it only so (Jira's Epic Link).",
    )
    labels: tuple[str, ...] = ()
    containers: tuple[str, ...] = Field(
        default=(), description="Jira project; Linear team and project; GitHub repo, milestone."
    )
    estimate: float | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    started_at: UtcDatetime | None = None
    resolved_at: UtcDatetime | None = None


class Page(BaseModel):
    """A batch of changed items and the cursor that resumes the fetch after them.

    The cursor is opaque to the engine. It is stored only once the page is committed, so a
    connector must return pages in an order where resuming from any page's cursor loses
    nothing (sorted by update time, with overlap made harmless by idempotent upserts).
    """

    model_config = ConfigDict(frozen=True)

    items: tuple[WorkItem, ...]
    cursor: str | None
