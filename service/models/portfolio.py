"""Links from work to key results, the rules that make links and classify work, and the
state derived from them that roll-ups read (DESIGN section 3)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.models.base import UTCDateTime, new_id, utcnow


class LinkRule(SQLModel, table=True):
    __tablename__ = "link_rules"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(default="", max_length=200)
    match: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    key_result_id: uuid.UUID = Field(foreign_key="key_results.id", index=True, ondelete="CASCADE")
    weight: float = 1.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (sa.CheckConstraint("weight > 0", name="weight_positive"),)


class Link(SQLModel, table=True):
    __tablename__ = "links"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key_result_id: uuid.UUID = Field(foreign_key="key_results.id", index=True, ondelete="CASCADE")
    work_item_id: uuid.UUID = Field(foreign_key="work_items.id", index=True, ondelete="CASCADE")
    weight: float = 1.0
    # Derived: weight over the sum of the item's link weights, kept by service.derived, so a
    # roll-up splits effort across KRs without normalising weights on every read.
    share: float = 1.0
    origin: str = Field(default="manual", max_length=16)
    # Set for links a rule made: they go when the rule goes or stops matching.
    link_rule_id: uuid.UUID | None = Field(
        default=None, foreign_key="link_rules.id", index=True, ondelete="CASCADE"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        # One link per item and KR: a manual link takes the place of a rule's.
        sa.UniqueConstraint("key_result_id", "work_item_id", name="uq_links_key_result_work_item"),
        sa.CheckConstraint("weight > 0", name="weight_positive"),
        sa.CheckConstraint("origin IN ('manual', 'rule')", name="origin"),
        sa.CheckConstraint(
            "(origin = 'rule') = (link_rule_id IS NOT NULL)", name="rule_links_name_their_rule"
        ),
    )


class ClassificationRule(SQLModel, table=True):
    __tablename__ = "classification_rules"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(default="", max_length=200)
    match: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    priority: int = 0
    category: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("category IN ('improvement', 'heartbeat')", name="category"),
    )


class KeyResultEffort(SQLModel, table=True):
    """Linked progress inputs per KR (section 3, item 8): effort of the live, non-canceled
    leaves counting toward it, weighted by share, whatever their period. Recomputed for the
    KRs a write touches, so reading progress costs one indexed lookup.

    A leaf's effective links (section 3, item 4) are stored nowhere of their own: they are
    the links of the item that decided it (`decided_by_item_id` of a strategic item), with
    their shares. Relinking an item that has links then rewrites its links alone, not a row
    per leaf below it."""

    __tablename__ = "key_result_efforts"

    key_result_id: uuid.UUID = Field(
        foreign_key="key_results.id", primary_key=True, ondelete="CASCADE"
    )
    done_count: float = 0.0
    all_count: float = 0.0
    done_points: float = 0.0
    all_points: float = 0.0


NO_TEAM = uuid.UUID(int=0)


def _cell_columns() -> Any:
    # SQLite numbers rows itself only for an INTEGER PRIMARY KEY.
    return Field(
        default=None, primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
    )  # fmt: skip


def _cell_indexes(table: str, key: list[str]) -> tuple[sa.Index, sa.Index]:
    fresh = sa.text("fresh")
    return (
        # Not the figures: compaction updates them in place, and an update that writes no
        # indexed column stays on its page (migration c4d9e7a1f2b3).
        sa.Index(f"ix_{table}_key", *key),
        # Compaction starts from the rows appended since the last one.
        sa.Index(f"ix_{table}_fresh", "id", postgresql_where=fresh, sqlite_where=fresh),
    )


class RollupCell(SQLModel, table=True):
    """What live leaves add up to in one month, by state, team and category, so that a
    roll-up over whole months sums these instead of scanning leaves (service.rollups.cells).

    Database triggers keep them on every write (migration 7c0e5b2a9d14). `state` is `done`
    for leaves resolved in the month and `open` for leaves still open that were created in
    it; months are UTC. Keys hold no NULLs: NO_TEAM stands for no team and '' for the default
    category. On PostgreSQL a trigger appends a row of differences per key and statement, so
    writers never wait on each other, and compaction merges a key's rows later; on SQLite,
    which has one writer, a key's row is updated in place. Either way a key's figures are the
    sum of its rows. (A SQLite migration that copies work_items must re-create the triggers.)
    """

    __tablename__ = "rollup_cells"

    id: int | None = _cell_columns()
    month: date
    state: str = Field(max_length=8)
    team_id: uuid.UUID  # no foreign key: a team's cells go with its items
    category: str = Field(max_length=16)
    leaves: int
    points: float
    unestimated: int
    fresh: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})

    __table_args__ = _cell_indexes("rollup_cells", ["state", "month", "team_id", "category"])


class SourceCell(SQLModel, table=True):
    """What strategic leaves add up to in one month, by state and team, per link source: the
    item whose links they count toward (their `decided_by_item_id`). A KR's cells are its
    links' sources' cells, each weighted by the link's share, joined when read: a source has
    few links, and relinking it then writes no cell (migration 9a4c2e6f8b1d). The rows of
    NO_TEAM hold every leaf's, teamless ones included, so a portfolio roll-up reads one key
    per source and month. Kept by the work items' triggers, in the same way as RollupCell."""

    __tablename__ = "source_cells"

    id: int | None = _cell_columns()
    month: date
    state: str = Field(max_length=8)
    team_id: uuid.UUID
    source_id: uuid.UUID  # no foreign key: a deleted source decides no leaf
    leaves: int
    points: float
    fresh: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})

    __table_args__ = _cell_indexes("source_cells", ["team_id", "state", "month", "source_id"])
