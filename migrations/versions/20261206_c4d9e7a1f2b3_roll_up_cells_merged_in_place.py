"""roll-up cells merged in place

Compaction now adds a key's appended rows into its merged row with an UPDATE, where it
deleted every row of the key and inserted their sum as a new row. For that UPDATE to stay
on its page and write no index entry (a HOT update), the key indexes no longer carry the
figures, and new pages keep a fifth of their space free for it. A compaction then writes
the merged rows of new keys only, where it rewrote every key it touched, with an entry in
each index for each (on PostgreSQL without a vacuum, index-only scans of the figures had
found few pages all-visible anyway).

Revision ID: c4d9e7a1f2b3
Revises: 3b8e41c7d5a2
Create Date: 2026-12-06 07:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4d9e7a1f2b3"
down_revision: str | None = "3b8e41c7d5a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = {
    "rollup_cells": (
        ["state", "month", "team_id", "category"], ["leaves", "points", "unestimated"],
    ),
    "key_result_cells": (
        ["team_id", "state", "month", "key_result_id"], ["leaves", "effort", "points"],
    ),
}  # fmt: skip
FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's indexes never carried the figures, and it updates in place anyway
    for table, (key, _) in KEYS.items():
        op.drop_index(f"ix_{table}_key", table_name=table)
        op.create_index(f"ix_{table}_key", table, key)
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, (key, figures) in KEYS.items():
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        op.drop_index(f"ix_{table}_key", table_name=table)
        op.create_index(f"ix_{table}_key", table, key, postgresql_include=figures)
