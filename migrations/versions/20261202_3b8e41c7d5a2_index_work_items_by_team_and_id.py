"""index work items by team and id

A team's work-item list pages in id order; with an index on the team alone, PostgreSQL walked
the primary key and filtered out every other team's items (13,000 rows for a page at 100k).

Revision ID: 3b8e41c7d5a2
Revises: 7c0e5b2a9d14
Create Date: 2026-12-02 07:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3b8e41c7d5a2"
down_revision: str | None = "7c0e5b2a9d14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index("ix_work_items_team_id_id", ["team_id", "id"], unique=False)
        batch_op.drop_index("ix_work_items_team_id")


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index("ix_work_items_team_id", ["team_id"], unique=False)
        batch_op.drop_index("ix_work_items_team_id_id")
