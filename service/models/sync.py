"""Connections to providers, the work items synced from them, and sync runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class Connection(SQLModel, table=True):
    __tablename__ = "connections"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    provider: str = Field(max_length=64)
    name: str = Field(max_length=200, unique=True)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # Fernet tokens: the plain values never reach the database.
    credentials_encrypted: str = Field(sa_type=sa.Text)
    webhook_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    sync_interval_minutes: int = 0
    cursor: str | None = Field(default=None, sa_type=sa.Text)
    last_sync_status: str | None = Field(default=None, max_length=16)
    last_sync_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID = Field(foreign_key="connections.id", ondelete="CASCADE")
    mode: str = Field(max_length=16)
    status: str = Field(default="queued", max_length=16)
    # Where the run began and the cursor after its last committed page: a killed run
    # resumes from `checkpoint`.
    start_cursor: str | None = Field(default=None, sa_type=sa.Text)
    checkpoint: str | None = Field(default=None, sa_type=sa.Text)
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    api_calls: int = 0
    pages: int = 0
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    queued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("mode IN ('full', 'incremental')", name="mode"),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        sa.Index("ix_sync_runs_connection_id_queued_at", "connection_id", "queued_at"),
        # One active sync per connection, enforced by the database itself.
        sa.Index(
            "uq_sync_runs_one_active_per_connection",
            "connection_id",
            unique=True,
            sqlite_where=sa.text("status IN ('queued', 'running')"),
            postgresql_where=sa.text("status IN ('queued', 'running')"),
        ),
    )


ROLLUP_COLUMNS = ["status_category", "category", "team_id", "decided_by_item_id", "estimate"]


class WorkItem(SQLModel, table=True):
    __tablename__ = "work_items"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connection_id: uuid.UUID = Field(foreign_key="connections.id", ondelete="CASCADE")
    external_id: str = Field(max_length=200)
    key: str = Field(max_length=200, index=True)
    url: str = Field(default="", sa_type=sa.Text)
    title: str = Field(default="", sa_type=sa.Text)
    kind: str = Field(max_length=16)
    type_name: str = Field(default="", max_length=100)
    status: str = Field(default="", max_length=100)
    status_category: str = Field(max_length=16)
    team_key: str | None = Field(default=None, max_length=64)
    team_id: uuid.UUID | None = Field(default=None, foreign_key="teams.id", ondelete="SET NULL")
    parent_external_id: str | None = Field(default=None, max_length=200)
    parent_key: str | None = Field(default=None, max_length=200)
    parent_id: uuid.UUID | None = Field(
        default=None, foreign_key="work_items.id", index=True, ondelete="SET NULL"
    )
    labels: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    containers: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    estimate: float | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The full-sync run that last saw the item: what a full run did not see was deleted.
    last_seen_run_id: uuid.UUID | None = Field(default=None)
    synced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Derived state (service.derived), kept current on every write that can change it, so a
    # roll-up is one aggregate query. `category` is null where the configured default applies;
    # `decided_by_*` say which item's links, or which rule matching which item, decided.
    is_leaf: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    category: str | None = Field(default=None, max_length=16)
    decided_by_item_id: uuid.UUID | None = Field(default=None)
    decided_by_rule_id: uuid.UUID | None = Field(default=None)

    __table_args__ = (
        sa.UniqueConstraint(
            "connection_id", "external_id", name="uq_work_items_connection_external"
        ),
        # Parents that arrive after their children are found through this.
        sa.Index(
            "ix_work_items_connection_id_parent_external_id", "connection_id", "parent_external_id"
        ),
        sa.Index("ix_work_items_connection_id_parent_key", "connection_id", "parent_key"),
        # Parents named by key (Data Center's Epic Link) are looked up through this.
        sa.Index("ix_work_items_connection_id_key", "connection_id", "key"),
        # A team's items in id order (the work-item list's pages), without walking every
        # item's id to find the team's; also the team foreign key's index.
        sa.Index("ix_work_items_team_id_id", "team_id", "id"),
        # The leaves each link source decides: a KR's linked effort is read through them.
        sa.Index(
            "ix_work_items_link_source",
            "decided_by_item_id",
            sqlite_where=sa.text("category = 'strategic'"),
            postgresql_where=sa.text("category = 'strategic'"),
        ),
        # The epic.unlinked scan reads live epics only.
        sa.Index(
            "ix_work_items_live_epics",
            "id",
            sqlite_where=sa.text("kind = 'epic' AND deleted_at IS NULL"),
            postgresql_where=sa.text("kind = 'epic' AND deleted_at IS NULL"),
        ),
        # Roll-ups read live leaves by when they were resolved; on PostgreSQL the index
        # carries every column a roll-up reads, so the aggregate is an index-only scan.
        sa.Index(
            "ix_work_items_live_leaves_resolved_at",
            "resolved_at",
            sqlite_where=sa.text("is_leaf AND deleted_at IS NULL"),
            postgresql_where=sa.text("is_leaf AND deleted_at IS NULL"),
            postgresql_include=ROLLUP_COLUMNS,
        ),
    )
