"""roll-up index carries the columns roll-ups read

Revision ID: b1a793ee778d
Revises: 92c99316fb7e
Create Date: 2026-11-23 13:42:06.305312
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1a793ee778d"
down_revision: str | None = "92c99316fb7e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


INDEX = "ix_work_items_live_leaves_resolved_at"
LIVE_LEAVES = sa.text("is_leaf AND deleted_at IS NULL")
INCLUDE = ["status_category", "category", "team_id", "decided_by_item_id", "estimate"]


def _recreate(include: list[str] | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no covering indexes; its index stays as it is
    op.drop_index(INDEX, table_name="work_items", postgresql_where=LIVE_LEAVES)
    op.create_index(
        INDEX, "work_items", ["resolved_at"], postgresql_where=LIVE_LEAVES,
        postgresql_include=include or [],
    )  # fmt: skip


def upgrade() -> None:
    _recreate(INCLUDE)


def downgrade() -> None:
    _recreate(None)
