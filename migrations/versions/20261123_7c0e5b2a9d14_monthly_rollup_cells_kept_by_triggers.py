"""monthly roll-up cells kept by triggers

What live leaves add up to per month, state, team and category (rollup_cells) and per month,
state, team and key result (key_result_cells), so that a roll-up over whole months reads a
few thousand rows instead of every leaf (service.rollups.cells). Triggers on work_items and
effective_links keep them on every write, whichever code path makes it.

PostgreSQL: statement triggers with transition tables append one row of differences per
key and statement; nothing is updated in place, so concurrent writers never wait on each
other or deadlock, and compaction later merges each key's rows. SQLite, which has one
writer, gets row triggers that update a key's row in place.

A contribution: a live leaf (not deleted, no live child) that is done with a resolution time
counts in the month of `resolved_at` as `done`; one still open (`todo`, `in_progress`) counts
in the month of `created_at` as `open`; months are UTC. Canceled leaves count in neither.

Revision ID: 7c0e5b2a9d14
Revises: 5d4aeaf6f432
Create Date: 2026-11-23 19:58:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c0e5b2a9d14"
down_revision: str | None = "5d4aeaf6f432"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DONE = "{r}status_category = 'done'"
COUNTED = (
    "{r}is_leaf AND {r}deleted_at IS NULL AND (({r}status_category = 'done'"
    " AND {r}resolved_at IS NOT NULL) OR {r}status_category IN ('todo', 'in_progress'))"
)
STATE = "CASE WHEN {r}status_category = 'done' THEN 'done' ELSE 'open' END"
WHEN = "CASE WHEN {r}status_category = 'done' THEN {r}resolved_at ELSE {r}created_at END"
# Key columns hold no NULLs, so that keys compare with `=` and compaction can use the index:
# the nil UUID stands for no team, and '' for the configured default category.
NO_TEAM = {
    "postgresql": "'00000000-0000-0000-0000-000000000000'::uuid",
    "sqlite": "'00000000000000000000000000000000'",
}
MONTH = {
    "postgresql": "date_trunc('month', (" + WHEN + ") AT TIME ZONE 'UTC')::date",
    "sqlite": "strftime('%Y-%m-01', " + WHEN + ")",
}
# The columns whose change can move a leaf's contribution.
WATCHED = (
    "is_leaf", "deleted_at", "status_category", "resolved_at", "created_at", "team_id",
    "category", "estimate",
)  # fmt: skip


def _contributions(dialect: str, source: str) -> str:
    """Rows of ``source`` (work items with a ``sign``) that count, with their cell key."""
    return (
        f"SELECT sign, id, coalesce(team_id, {NO_TEAM[dialect]}) AS team_id,"
        f" coalesce(category, '') AS category, estimate, {STATE.format(r='')} AS state,"
        f" {MONTH[dialect].format(r='')} AS month FROM ({source}) AS changed"
        f" WHERE {COUNTED.format(r='')}"
    )


def _cells_from(contributions: str) -> str:
    return (
        "INSERT INTO rollup_cells (month, state, team_id, category, leaves, points, unestimated)"
        " SELECT month, state, team_id, category, sum(sign),"
        " sum(sign * coalesce(estimate, 0)), sum(CASE WHEN estimate IS NULL THEN sign ELSE 0 END)"
        f" FROM ({contributions}) AS c GROUP BY month, state, team_id, category"
        " HAVING sum(sign) <> 0 OR sum(sign * coalesce(estimate, 0)) <> 0"
    )


def _kr_cells_from(dialect: str, contributions: str, links: str) -> str:
    """Each counted leaf joined to its effective links (``links``: rows with a ``sign`` of
    their own), into a row for its team and one for the whole portfolio (the nil team)."""
    nil = NO_TEAM[dialect]
    return (
        "INSERT INTO key_result_cells (month, state, team_id, key_result_id, leaves, effort,"
        " points)"
        f" SELECT c.month, c.state, CASE WHEN p.portfolio THEN {nil} ELSE c.team_id END,"
        " l.key_result_id, sum(c.sign * l.sign), sum(c.sign * l.sign * l.share),"
        " sum(c.sign * l.sign * l.share * coalesce(c.estimate, 0))"
        f" FROM ({contributions}) AS c JOIN ({links}) AS l ON l.work_item_id = c.id"
        f" JOIN ({PORTFOLIO}) AS p ON p.portfolio OR c.team_id <> {nil}"
        " GROUP BY 1, 2, 3, 4"
        " HAVING sum(c.sign * l.sign) <> 0 OR sum(c.sign * l.sign * l.share) <> 0"
        " OR sum(c.sign * l.sign * l.share * coalesce(c.estimate, 0)) <> 0"
    )


PORTFOLIO = "SELECT 1 = 1 AS portfolio UNION ALL SELECT 1 = 0"
LINKS = "SELECT 1 AS sign, work_item_id, key_result_id, share FROM effective_links"
ITEMS = "SELECT 1 AS sign, * FROM work_items"


def _postgresql() -> list[str]:
    # Every updated row, before (-1) and after (+1): rows whose contribution did not move
    # cancel out in the sums, which costs less than joining the two tables to find them (the
    # planner has no statistics for transition tables and nests the loop).
    moved = _contributions(
        "postgresql", "SELECT -1 AS sign, * FROM old_items UNION ALL SELECT 1, * FROM new_items"
    )
    items_function = f"""
        CREATE FUNCTION rollup_cells_follow_items() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_cells_from(_contributions("postgresql", "SELECT 1 AS sign, * FROM new_items"))};
            ELSIF TG_OP = 'UPDATE' THEN
                {_cells_from(moved)};
                {_kr_cells_from("postgresql", moved, LINKS)};
            ELSE
                {_cells_from(_contributions("postgresql", "SELECT -1 AS sign, * FROM old_items"))};
            END IF;
            RETURN NULL;
        END $$"""
    every_item = _contributions("postgresql", ITEMS)
    old_links = "SELECT -1 AS sign, work_item_id, key_result_id, share FROM old_links"
    new_links = "SELECT 1 AS sign, work_item_id, key_result_id, share FROM new_links"
    both = f"{old_links} UNION ALL {new_links}"
    links_function = f"""
        CREATE FUNCTION key_result_cells_follow_links() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_kr_cells_from("postgresql", every_item, new_links)};
            ELSIF TG_OP = 'UPDATE' THEN
                {_kr_cells_from("postgresql", every_item, both)};
            ELSE
                {_kr_cells_from("postgresql", every_item, old_links)};
            END IF;
            RETURN NULL;
        END $$"""
    # One trigger per event: a trigger with transition tables may have only one.
    statements = [items_function, links_function]
    for table, function, old, new in (
        ("work_items", "rollup_cells_follow_items", "old_items", "new_items"),
        ("effective_links", "key_result_cells_follow_links", "old_links", "new_links"),
    ):
        for event, tables in (
            ("INSERT", f"NEW TABLE AS {new}"),
            ("UPDATE", f"OLD TABLE AS {old} NEW TABLE AS {new}"),
            ("DELETE", f"OLD TABLE AS {old}"),
        ):
            statements.append(
                f"CREATE TRIGGER {table}_{event.lower()}_rollup_cells AFTER {event} ON {table}"
                f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    return statements


def _sqlite_add(sign: str, w: str, links: str) -> str:
    """Add ``sign`` times the contribution of the work item ``w`` to its cells, in place:
    ``w`` is NEW or OLD, or an alias that ``links`` (the FROM of the effective links to
    count, as ``l``) brings in."""
    nil = NO_TEAM["sqlite"]
    month, state = MONTH["sqlite"].format(r=f"{w}."), STATE.format(r=f"{w}.")
    counted = COUNTED.format(r=f"{w}.")
    team = f"CASE WHEN p.portfolio THEN {nil} ELSE coalesce({w}.team_id, {nil}) END"

    def kr_cell(k: str) -> str:
        return (
            f"{k}.month = {month} AND {k}.state = {state} AND {k}.team_id = {team}"
            f" AND {k}.key_result_id = l.key_result_id"
        )

    kr_from = f"{links} JOIN ({PORTFOLIO}) AS p ON p.portfolio OR {w}.team_id IS NOT NULL"
    points = f"{sign} * l.share * coalesce({w}.estimate, 0)"
    return f"""
        UPDATE key_result_cells SET leaves = leaves + {sign}, effort = effort + {sign} * l.share,
            points = points + {points}
        FROM {kr_from}
        WHERE {counted} AND {kr_cell("key_result_cells")};
        INSERT INTO key_result_cells (month, state, team_id, key_result_id, leaves, effort,
            points)
        SELECT {month}, {state}, {team}, l.key_result_id, {sign}, {sign} * l.share, {points}
        FROM {kr_from}
        WHERE {counted}
            AND NOT EXISTS (SELECT 1 FROM key_result_cells AS k WHERE {kr_cell("k")});"""


def _sqlite_add_item(sign: str, w: str, *, linked: bool = True) -> str:
    """Add ``sign`` times the contribution of ``w`` (NEW or OLD) to its rollup cell, and,
    if it may have effective links (``linked``), to its key results' cells."""
    nil = NO_TEAM["sqlite"]
    month, state = MONTH["sqlite"].format(r=f"{w}."), STATE.format(r=f"{w}.")
    counted = COUNTED.format(r=f"{w}.")
    team, category = f"coalesce({w}.team_id, {nil})", f"coalesce({w}.category, '')"
    cell = f"month = {month} AND state = {state} AND team_id = {team} AND category = {category}"
    points = f"{sign} * coalesce({w}.estimate, 0)"
    unestimated = f"CASE WHEN {w}.estimate IS NULL THEN {sign} ELSE 0 END"
    return f"""
        UPDATE rollup_cells SET leaves = leaves + {sign}, points = points + {points},
            unestimated = unestimated + {unestimated}
        WHERE {counted} AND {cell};
        INSERT INTO rollup_cells (month, state, team_id, category, leaves, points, unestimated)
        SELECT {month}, {state}, {team}, {category}, {sign}, {points}, {unestimated}
        WHERE {counted} AND NOT EXISTS (SELECT 1 FROM rollup_cells WHERE {cell});
        {_sqlite_add(sign, w, _links(w)) if linked else ""}"""


def _links(w: str) -> str:
    return f"(SELECT * FROM effective_links WHERE work_item_id = {w}.id) AS l"


def _sqlite() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)

    def link(sign: str, row: str) -> str:
        item = f"(SELECT {row}.key_result_id AS key_result_id, {row}.share AS share) AS l"
        return _sqlite_add(sign, "w", f"work_items AS w JOIN {item} ON w.id = {row}.work_item_id")

    return [
        # A new item has no effective links yet: they refer to it, so they come after.
        "CREATE TRIGGER work_items_insert_rollup_cells AFTER INSERT ON work_items BEGIN"
        f" {_sqlite_add_item('1', 'NEW', linked=False)} END",
        "CREATE TRIGGER work_items_update_rollup_cells AFTER UPDATE ON work_items"
        f" WHEN {changed} BEGIN {_sqlite_add_item('-1', 'OLD', linked=False)}"
        f" {_sqlite_add_item('1', 'NEW', linked=False)} END",
        # Apart, so that the many updates of items with no effective links skip it whole.
        "CREATE TRIGGER work_items_update_key_result_cells AFTER UPDATE ON work_items"
        f" WHEN ({changed}) AND EXISTS (SELECT 1 FROM effective_links WHERE work_item_id = NEW.id)"
        f" BEGIN {_sqlite_add('-1', 'OLD', _links('OLD'))} {_sqlite_add('1', 'NEW', _links('NEW'))}"
        " END",
        "CREATE TRIGGER work_items_delete_rollup_cells AFTER DELETE ON work_items BEGIN"
        f" {_sqlite_add_item('-1', 'OLD')} END",
        "CREATE TRIGGER effective_links_insert_rollup_cells AFTER INSERT ON effective_links"
        f" BEGIN {link('1', 'NEW')} END",
        "CREATE TRIGGER effective_links_update_rollup_cells AFTER UPDATE ON effective_links"
        f" BEGIN {link('-1', 'OLD')} {link('1', 'NEW')} END",
        "CREATE TRIGGER effective_links_delete_rollup_cells AFTER DELETE ON effective_links"
        f" BEGIN {link('-1', 'OLD')} END",
    ]


def _id_column() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
        nullable=False,
    )  # fmt: skip


def _cells_table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
            nullable=False,
        ),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        *columns,
        sa.Column("fresh", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )  # fmt: skip
    op.create_index(
        f"ix_{name}_fresh", name, ["id"], postgresql_where=sa.text("fresh"),
        sqlite_where=sa.text("fresh"),
    )  # fmt: skip


def upgrade() -> None:
    _cells_table(
        "rollup_cells",
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("unestimated", sa.Integer(), nullable=False),
    )
    # On PostgreSQL the key indexes carry the figures: reads are index-only scans.
    op.create_index(
        "ix_rollup_cells_key",
        "rollup_cells",
        ["state", "month", "team_id", "category"],
        postgresql_include=["leaves", "points", "unestimated"],
    )
    _cells_table(
        "key_result_cells",
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("effort", sa.Float(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_key_result_cells_key", "key_result_cells",
        ["team_id", "state", "month", "key_result_id"],
        postgresql_include=["leaves", "effort", "points"],
    )  # fmt: skip
    dialect = op.get_bind().dialect.name
    # What is stored already, then the triggers for what comes.
    every_item = _contributions(dialect, ITEMS)
    op.execute(_cells_from(every_item))
    op.execute(_kr_cells_from(dialect, every_item, LINKS))
    for statement in _postgresql() if dialect == "postgresql" else _sqlite():
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS work_items_update_key_result_cells" + (
        " ON work_items" if op.get_bind().dialect.name == "postgresql" else ""
    ))  # fmt: skip
    for table in ("work_items", "effective_links"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_rollup_cells" + (
                f" ON {table}" if op.get_bind().dialect.name == "postgresql" else ""
            ))  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS rollup_cells_follow_items()")
        op.execute("DROP FUNCTION IF EXISTS key_result_cells_follow_links()")
    for table in ("key_result_cells", "rollup_cells"):
        op.drop_index(f"ix_{table}_key", table_name=table)
        op.drop_index(f"ix_{table}_fresh", table_name=table)
        op.drop_table(table)
