"""catalog version kept by triggers

A single row whose random token changes with every write to teams, periods, objectives, key
results and check-ins, by triggers, whichever code path makes the write: a process keeps
what it read of those tables for as long as the token it read with them is current
(service.catalog), instead of reading the org tree, the period and every KR's labels again
for each roll-up.

Revision ID: e5a1c3b7d9f2
Revises: c4d9e7a1f2b3
Create Date: 2026-12-07 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c3b7d9f2"
down_revision: str | None = "c4d9e7a1f2b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("teams", "periods", "objectives", "key_results", "check_ins")
NEW_TOKEN = {
    "postgresql": "gen_random_uuid()::text",
    "sqlite": "lower(hex(randomblob(16)))",
}
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_catalog_version_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    dialect = op.get_bind().dialect.name
    new_token = NEW_TOKEN[dialect]
    op.execute(f"INSERT INTO catalog_version (id, token) VALUES (1, {new_token})")
    bump = f"UPDATE catalog_version SET token = {new_token}"
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {bump}; RETURN NULL; END $$"
        )
        for table in TABLES:
            # Once a statement, whatever it wrote; TRUNCATE too, which fires no row event.
            op.execute(
                f"CREATE TRIGGER {table}_catalog_version"
                f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump()"
            )
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_catalog_version AFTER {event}"
                f" ON {table} BEGIN {bump}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS catalog_version_bump()")
    else:
        for table in TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_catalog_version")
    op.drop_table("catalog_version")
