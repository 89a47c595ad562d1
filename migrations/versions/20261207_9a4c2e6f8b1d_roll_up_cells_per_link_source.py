"""roll-up cells per link source

A leaf's effective links are its link source's links (the item in `decided_by_item_id` of a
strategic leaf), so they are no longer stored a row per leaf and KR: `effective_links` goes,
and with it `key_result_cells`, whose rows its triggers appended for every changed pair.
`source_cells` keeps what strategic leaves add up to per month, state, team (and, as the nil
team, the whole portfolio) and link source, kept by the work items' triggers alone; a
roll-up joins a source's sums to its links and their shares when it reads them. Relinking
an epic that has links then writes its link rows and nothing below them, where it rewrote
an effective link per leaf and KR and appended the KR cells each of those moved.

The work items' triggers append to both cell tables from one statement (PostgreSQL) or update
both in place (SQLite), as migration 7c0e5b2a9d14 describes. A partial index finds the leaves
each source decides: a KR's linked effort is summed through it.

Revision ID: 9a4c2e6f8b1d
Revises: e5a1c3b7d9f2
Create Date: 2026-12-07 16:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "9a4c2e6f8b1d"
down_revision: str | None = "e5a1c3b7d9f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cells_migration() -> ModuleType:
    """Migration 7c0e5b2a9d14, whose contribution rules this one keeps and whose triggers a
    downgrade puts back."""
    path = Path(__file__).with_name(
        "20261123_7c0e5b2a9d14_monthly_rollup_cells_kept_by_triggers.py"
    )
    spec = importlib.util.spec_from_file_location("okr_sync_migration_7c0e5b2a9d14", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CELLS = _cells_migration()
FILLFACTOR = 80  # as migration c4d9e7a1f2b3 gave the other cell tables
SOURCE = "CASE WHEN {r}category = 'strategic' THEN {r}decided_by_item_id END"


def _contributions(dialect: str, source: str) -> str:
    """Rows of ``source`` (work items with a ``sign``) that count, with their cell keys."""
    return (
        f"SELECT sign, coalesce(team_id, {CELLS.NO_TEAM[dialect]}) AS team_id,"
        f" coalesce(category, '') AS category, estimate, {SOURCE.format(r='')} AS source,"
        f" {CELLS.STATE.format(r='')} AS state, {CELLS.MONTH[dialect].format(r='')} AS month"
        f" FROM ({source}) AS changed WHERE {CELLS.COUNTED.format(r='')}"
    )


def _source_cells_from(dialect: str, contributions: str) -> str:
    """The strategic rows of ``contributions`` (as ``c``) into a row for their team and one
    for the whole portfolio (the nil team), as migration 7c0e5b2a9d14 keeps KR cells: a
    portfolio roll-up reads one row a source and month, a team's roll-up its teams' rows."""
    nil = CELLS.NO_TEAM[dialect]
    points = "sum(c.sign * coalesce(c.estimate, 0))"
    return (
        "INSERT INTO source_cells (month, state, team_id, source_id, leaves, points)"
        f" SELECT c.month, c.state, CASE WHEN p.portfolio THEN {nil} ELSE c.team_id END,"
        f" c.source, sum(c.sign), {points} FROM {contributions}"
        f" JOIN ({CELLS.PORTFOLIO}) AS p ON p.portfolio OR c.team_id <> {nil}"
        f" WHERE c.source IS NOT NULL GROUP BY 1, 2, 3, 4"
        f" HAVING sum(c.sign) <> 0 OR {points} <> 0"
    )


def _both_from(contributions: str) -> str:
    """One statement appending to both cell tables: the changed rows are read once."""
    return (
        f"WITH c AS ({contributions}), categories AS ({CELLS._cells_from('SELECT * FROM c')})"
        f" {_source_cells_from('postgresql', 'c')}"
    )


def _postgresql() -> list[str]:
    insert = _contributions("postgresql", "SELECT 1 AS sign, * FROM new_items")
    # Every updated row, before (-1) and after (+1), as migration 7c0e5b2a9d14 explains.
    update = _contributions(
        "postgresql", "SELECT -1 AS sign, * FROM old_items UNION ALL SELECT 1, * FROM new_items"
    )
    delete = _contributions("postgresql", "SELECT -1 AS sign, * FROM old_items")
    function = f"""
        CREATE FUNCTION rollup_cells_follow_items() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_both_from(insert)};
            ELSIF TG_OP = 'UPDATE' THEN
                {_both_from(update)};
            ELSE
                {_both_from(delete)};
            END IF;
            RETURN NULL;
        END $$"""
    statements = [function]
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_items"),
        ("UPDATE", "OLD TABLE AS old_items NEW TABLE AS new_items"),
        ("DELETE", "OLD TABLE AS old_items"),
    ):
        statements.append(
            f"CREATE TRIGGER work_items_{event.lower()}_rollup_cells AFTER {event} ON work_items"
            f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION"
            " rollup_cells_follow_items()"
        )
    return statements


def _sqlite_add_source(sign: str, w: str) -> str:
    """Add ``sign`` times the contribution of ``w`` (NEW or OLD) to its source's cells for
    its team and the portfolio, in place, if it is strategic."""
    nil = CELLS.NO_TEAM["sqlite"]
    month, state = CELLS.MONTH["sqlite"].format(r=f"{w}."), CELLS.STATE.format(r=f"{w}.")
    counted = f"{CELLS.COUNTED.format(r=f'{w}.')} AND {w}.category = 'strategic'"
    team = f"CASE WHEN p.portfolio THEN {nil} ELSE coalesce({w}.team_id, {nil}) END"
    scopes = f"({CELLS.PORTFOLIO}) AS p"
    in_scope = f"(p.portfolio OR {w}.team_id IS NOT NULL)"

    def cell(s: str) -> str:
        return (
            f"{s}.month = {month} AND {s}.state = {state} AND {s}.team_id = {team}"
            f" AND {s}.source_id = {w}.decided_by_item_id"
        )

    points = f"{sign} * coalesce({w}.estimate, 0)"
    return f"""
        UPDATE source_cells SET leaves = leaves + {sign}, points = points + {points}
        FROM {scopes} WHERE {counted} AND {in_scope} AND {cell("source_cells")};
        INSERT INTO source_cells (month, state, team_id, source_id, leaves, points)
        SELECT {month}, {state}, {team}, {w}.decided_by_item_id, {sign}, {points}
        FROM {scopes}
        WHERE {counted} AND {in_scope} AND {w}.decided_by_item_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM source_cells AS k WHERE {cell("k")});"""


SQLITE_SOURCE_TRIGGERS = ("insert", "update", "delete")


def _sqlite() -> list[str]:
    watched = (*CELLS.WATCHED, "decided_by_item_id")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    return [
        "CREATE TRIGGER work_items_delete_rollup_cells AFTER DELETE ON work_items BEGIN"
        f" {CELLS._sqlite_add_item('-1', 'OLD', linked=False)} END",
        # Apart from the category cells', so that items that are not strategic skip them.
        "CREATE TRIGGER work_items_insert_source_cells AFTER INSERT ON work_items"
        f" WHEN NEW.category = 'strategic' BEGIN {_sqlite_add_source('1', 'NEW')} END",
        "CREATE TRIGGER work_items_update_source_cells AFTER UPDATE ON work_items"
        f" WHEN ({changed}) AND (OLD.category = 'strategic' OR NEW.category = 'strategic')"
        f" BEGIN {_sqlite_add_source('-1', 'OLD')} {_sqlite_add_source('1', 'NEW')} END",
        "CREATE TRIGGER work_items_delete_source_cells AFTER DELETE ON work_items"
        f" WHEN OLD.category = 'strategic' BEGIN {_sqlite_add_source('-1', 'OLD')} END",
    ]


def _drop_trigger(name: str, table: str) -> None:
    on = f" ON {table}" if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(f"DROP TRIGGER IF EXISTS {name}{on}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Their triggers go with them; the work items' come back with the new function.
        op.execute("DROP FUNCTION key_result_cells_follow_links() CASCADE")
        op.execute("DROP FUNCTION rollup_cells_follow_items() CASCADE")
    else:
        for event in ("insert", "update", "delete"):
            _drop_trigger(f"effective_links_{event}_rollup_cells", "effective_links")
        _drop_trigger("work_items_update_key_result_cells", "work_items")
        _drop_trigger("work_items_delete_rollup_cells", "work_items")
    op.create_table(
        "source_cells",
        CELLS._id_column(),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("fresh", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_cells")),
    )
    op.create_index(
        "ix_source_cells_key", "source_cells", ["team_id", "state", "month", "source_id"]
    )
    op.create_index(
        "ix_source_cells_fresh", "source_cells", ["id"], postgresql_where=sa.text("fresh"),
        sqlite_where=sa.text("fresh"),
    )  # fmt: skip
    if dialect == "postgresql":
        op.execute(f"ALTER TABLE source_cells SET (fillfactor = {FILLFACTOR})")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_items_link_source", ["decided_by_item_id"],
            postgresql_where=sa.text("category = 'strategic'"),
            sqlite_where=sa.text("category = 'strategic'"),
        )  # fmt: skip
    every_item = _contributions(dialect, CELLS.ITEMS)
    op.execute(_source_cells_from(dialect, f"({every_item}) AS c"))
    for statement in _postgresql() if dialect == "postgresql" else _sqlite():
        op.execute(statement)
    op.drop_index("ix_key_result_cells_fresh", table_name="key_result_cells")
    op.drop_index("ix_key_result_cells_key", table_name="key_result_cells")
    op.drop_table("key_result_cells")
    op.drop_index("ix_effective_links_key_result_id", table_name="effective_links")
    op.drop_table("effective_links")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP FUNCTION rollup_cells_follow_items() CASCADE")
    else:
        for event in SQLITE_SOURCE_TRIGGERS:
            _drop_trigger(f"work_items_{event}_source_cells", "work_items")
        _drop_trigger("work_items_delete_rollup_cells", "work_items")
    op.create_table(
        "effective_links",
        sa.Column("work_item_id", sa.Uuid(), nullable=False),
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_result_id"], ["key_results.id"],
            name=op.f("fk_effective_links_key_result_id_key_results"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"], ["work_items.id"],
            name=op.f("fk_effective_links_work_item_id_work_items"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_item_id", "key_result_id", name=op.f("pk_effective_links")),
    )  # fmt: skip
    op.create_index("ix_effective_links_key_result_id", "effective_links", ["key_result_id"])
    # A strategic item's effective links are its source's links.
    op.execute(
        "INSERT INTO effective_links (work_item_id, key_result_id, share)"
        " SELECT w.id, l.key_result_id, l.share FROM work_items AS w"
        " JOIN links AS l ON l.work_item_id = w.decided_by_item_id"
        " WHERE w.category = 'strategic'"
    )
    CELLS._cells_table(
        "key_result_cells",
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("effort", sa.Float(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_key_result_cells_key", "key_result_cells",
        ["team_id", "state", "month", "key_result_id"],
    )  # fmt: skip
    if dialect == "postgresql":
        op.execute(f"ALTER TABLE key_result_cells SET (fillfactor = {FILLFACTOR})")
    op.execute(
        CELLS._kr_cells_from(dialect, CELLS._contributions(dialect, CELLS.ITEMS), CELLS.LINKS)
    )
    if dialect == "postgresql":
        for statement in CELLS._postgresql():
            op.execute(statement)
    else:
        # The category cells' insert and update triggers stayed; the rest come back.
        for statement in CELLS._sqlite()[2:]:
            op.execute(statement)
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_link_source")
    op.drop_index("ix_source_cells_fresh", table_name="source_cells")
    op.drop_index("ix_source_cells_key", table_name="source_cells")
    op.drop_table("source_cells")
