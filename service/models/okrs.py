"""The OKR side of the domain: teams, periods, objectives, key results, check-ins."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    parent_id: uuid.UUID | None = Field(
        default=None, foreign_key="teams.id", index=True, ondelete="RESTRICT"
    )
    strategic_target: float | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Period(SQLModel, table=True):
    __tablename__ = "periods"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    start: date
    end: date
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (sa.CheckConstraint('"end" > start', name="end_after_start"),)


class Objective(SQLModel, table=True):
    __tablename__ = "objectives"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    title: str = Field(max_length=500)
    description: str = Field(default="", sa_type=sa.Text)
    period_id: uuid.UUID = Field(foreign_key="periods.id", index=True, ondelete="RESTRICT")
    team_id: uuid.UUID | None = Field(
        default=None, foreign_key="teams.id", index=True, ondelete="RESTRICT"
    )
    parent_id: uuid.UUID | None = Field(
        default=None, foreign_key="objectives.id", index=True, ondelete="RESTRICT"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KeyResult(SQLModel, table=True):
    __tablename__ = "key_results"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    objective_id: uuid.UUID = Field(foreign_key="objectives.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=500)
    start_value: float = 0.0
    target_value: float
    current_value: float = 0.0
    unit: str = Field(default="", max_length=32)
    progress_mode: str = Field(default="manual", max_length=16)
    progress_basis: str = Field(default="count", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("target_value <> start_value", name="target_differs_from_start"),
        sa.CheckConstraint("progress_mode IN ('manual', 'linked')", name="progress_mode"),
        sa.CheckConstraint("progress_basis IN ('count', 'points')", name="progress_basis"),
    )


class CheckIn(SQLModel, table=True):
    __tablename__ = "check_ins"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key_result_id: uuid.UUID = Field(foreign_key="key_results.id", ondelete="CASCADE")
    value: float
    confidence: float | None = None
    note: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        # The latest check-in per key result is read on every KR response.
        sa.Index("ix_check_ins_key_result_id_created_at", "key_result_id", "created_at"),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="confidence_range"
        ),
    )


class CatalogVersion(SQLModel, table=True):
    """One row whose token triggers replace on every write to the tables above, so that a
    process may keep what it read of them (names, titles, the org tree) for as long as the
    token it read with them is current (service.catalog). The token is random, not a
    counter: a rolled-back write restores the old one, and a counter would then hand out
    its next value again for different contents."""

    __tablename__ = "catalog_version"

    id: int = Field(default=1, primary_key=True)
    token: str = Field(max_length=36)

    __table_args__ = (sa.CheckConstraint("id = 1", name="one_row"),)
