"""What the event scans last announced, so each event fires once per change, not per scan."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime


class EpicWatch(SQLModel, table=True):
    """An open epic with no effective link: since when, and whether ``epic.unlinked`` went out."""

    __tablename__ = "epic_watches"

    work_item_id: uuid.UUID = Field(
        foreign_key="work_items.id", primary_key=True, ondelete="CASCADE"
    )
    unlinked_since: datetime = Field(sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class KeyResultWatch(SQLModel, table=True):
    __tablename__ = "key_result_watches"

    key_result_id: uuid.UUID = Field(
        foreign_key="key_results.id", primary_key=True, ondelete="CASCADE"
    )
    # The progress last announced (or first seen).
    progress: float
    # Set when key_result.stale went out; cleared by the next check-in.
    stale_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TeamShareWatch(SQLModel, table=True):
    """Whether a team's strategic share for a period was below its target at the last scan."""

    __tablename__ = "team_share_watches"

    team_id: uuid.UUID = Field(foreign_key="teams.id", primary_key=True, ondelete="CASCADE")
    period_id: uuid.UUID = Field(foreign_key="periods.id", primary_key=True, ondelete="CASCADE")
    below: bool
