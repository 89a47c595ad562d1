"""Derived state: what each work item's effort counts toward, and why (DESIGN section 3).

For every item: whether it is a leaf (item 1); the nearest item on the way up that has links,
whose links, with each KR's share of the weights, are its effective links (item 4: stored as
that item in `decided_by_item_id`, not a row per item and KR); otherwise the category of the
highest-priority classification rule that matches it or an ancestor, nearest first (item 5),
or none where the configured default applies. Deleted items carry no links and match no
rules; items below them still inherit through them.

Everything a write can change lies in the subtrees below the items it touched, so a write
recomputes exactly those subtrees, top-down, and stores only what changed. A roll-up is then
one aggregate over stored columns.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import (
    AnyPrepared,
    Prepared,
    Statement,
    among_parameter,
    chunks,
    fetch_rows,
    reused_plans,
    run,
)
from service.derived import efforts
from service.models import ClassificationRule, Link, WorkItem
from service.models.base import table_of
from service.rollups import cells
from service.rules.matching import SUBJECT_COLUMNS, Matcher, Subject, subject_of
from service.webhooks import outbox


@dataclass(slots=True)
class Node:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    deleted: bool
    subject: Subject
    stored: tuple[bool, str | None, uuid.UUID | None, uuid.UUID | None]


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    category: str
    matches: Matcher


@dataclass(frozen=True, slots=True)
class Context:
    """What an item passes down to its children."""

    link_source: uuid.UUID | None = None
    links: tuple[tuple[uuid.UUID, float], ...] = ()
    # For each rule that matched an item on the way up: the nearest such item.
    nearest: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)


EMPTY = Context()

_NODE_COLUMNS = (
    col(WorkItem.id),
    col(WorkItem.parent_id),
    col(WorkItem.deleted_at),
    col(WorkItem.is_leaf),
    col(WorkItem.category),
    col(WorkItem.decided_by_item_id),
    col(WorkItem.decided_by_rule_id),
    *SUBJECT_COLUMNS,
)


def _node(row: Sequence[Any]) -> Node:
    item_id, parent_id, deleted_at, is_leaf, category, by_item, by_rule = row[:7]
    return Node(
        id=item_id,
        parent_id=parent_id,
        deleted=deleted_at is not None,
        subject=subject_of(row[7:]),
        stored=(bool(is_leaf), category, by_item, by_rule),
    )


@lru_cache(maxsize=8)
def _nodes_statement(dialect: str, by: str, excluding: bool = False) -> AnyPrepared:
    """The nodes whose ``by`` column (id or parent_id) is in parameter ``ids``, and if
    ``excluding``, whose id is not in parameter ``known``: built once, run level by level.
    With ``by`` "tree" (PostgreSQL), the nodes in parameter ``ids`` and all below them."""
    if by == "tree":
        return _tree_statement()
    column = col(WorkItem.id) if by == "id" else col(WorkItem.parent_id)
    condition = among_parameter(column, "ids", dialect)
    if excluding:
        condition = sa.and_(condition, ~among_parameter(col(WorkItem.id), "known", dialect))
    return Prepared(sa.select(*_NODE_COLUMNS).where(condition))


def _tree_statement() -> AnyPrepared:
    """One recursive query for whole subtrees: a link change reads an epic's in one round
    trip where it took one a level. The recursion unions ids alone, so a cycle in provider
    data ends where it closes."""
    items = table_of(WorkItem)
    child = items.alias("child")
    tree = (
        sa.select(items.c.id)
        .where(among_parameter(items.c.id, "ids", "postgresql"))
        .cte("tree", recursive=True)
    )
    tree = tree.union(sa.select(child.c.id).join(tree, child.c.parent_id == tree.c.id))
    # The nodes are looked up by the array of the tree's ids: joined to the tree, whose size
    # the planner cannot know, they were merge-joined over the whole primary key.
    found = sa.func.array(sa.select(tree.c.id).scalar_subquery())
    return Prepared(sa.select(*_NODE_COLUMNS).where(col(WorkItem.id) == sa.any_(found)))


async def _load(
    session: AsyncSession, by: str, ids: list[uuid.UUID], known: Collection[uuid.UUID] = ()
) -> list[Node]:
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {"ids": ids}
    if known:
        params["known"] = list(known)
    rows = await fetch_rows(session, _nodes_statement(dialect, by, bool(known)), params)
    return [_node(row) for row in rows]


async def _subtrees(
    session: AsyncSession, roots: Collection[uuid.UUID], known: Mapping[uuid.UUID, Node]
) -> dict[uuid.UUID, Node]:
    """The roots and every item below them; ``known`` nodes are taken as given."""
    if not known and session.get_bind().dialect.name == "postgresql":
        tree = {n.id: n for batch in chunks(roots) for n in await _load(session, "tree", batch)}
        # Roots first, as level by level: a cycle in provider data runs through a root, and
        # ``_contexts`` breaks it where it closes, so the order decides what it inherits.
        return {**{r: tree[r] for r in roots if r in tree}, **tree}
    nodes = {r: known[r] for r in roots if r in known}
    level: list[uuid.UUID] = list(nodes)
    for batch in chunks(r for r in roots if r not in known):
        for node in await _load(session, "id", batch):
            if node.id not in nodes:
                nodes[node.id] = node
                level.append(node.id)
    # Known nodes' children that are known too need not be read again (a page's children
    # are mostly in the page); a large set is not worth the parameter.
    exclude = known.keys() if 0 < len(known) <= 5000 else ()
    while level:
        found: list[Node] = []
        for batch in chunks(level):
            found.extend(await _load(session, "parent_id", batch, exclude))
        level = []
        for node in found:
            if node.id not in nodes:  # a cycle in provider data ends here
                nodes[node.id] = node
                level.append(node.id)
    return nodes


async def _ancestors(session: AsyncSession, nodes: dict[uuid.UUID, Node]) -> dict[uuid.UUID, Node]:
    above: dict[uuid.UUID, Node] = {}
    wanted = {n.parent_id for n in nodes.values() if n.parent_id and n.parent_id not in nodes}
    while wanted:
        for batch in chunks(wanted):
            for node in await _load(session, "id", batch):
                above[node.id] = node
        wanted = {
            n.parent_id
            for n in above.values()
            if n.parent_id and n.parent_id not in nodes and n.parent_id not in above
        }
        wanted -= above.keys()
    return above


Pairs = tuple[tuple[uuid.UUID, float], ...]

# The key space of the per-item locks of link changes (see take_tree_turn).
TREE_LOCK = 0x6F6B7274  # "okrt"
_TREE_LOCKS = Statement(
    sa.text(
        "WITH RECURSIVE up(id, parent_id) AS ("
        " SELECT id, parent_id FROM work_items WHERE id = :item"
        " UNION SELECT w.id, w.parent_id FROM work_items w JOIN up ON w.id = up.parent_id)"
        # The sort is fenced off (OFFSET 0) so that the locks are taken in its order.
        " SELECT count(pg_advisory_xact_lock(:space, hashtext(id::text)))"
        " FROM (SELECT id FROM up ORDER BY id OFFSET 0) AS sorted"
    )
)


async def take_tree_turn(session: AsyncSession, item_id: uuid.UUID) -> None:
    """Writers of the derived state below one item take turns with the others in its tree
    until their transactions end: a change to an item rewrites its subtree, which another
    item's subtree can overlap only if the two share a root. On PostgreSQL, advisory locks
    on the item and its ancestors, taken in one order (two items of a tree share at least
    its root's; a cycle in provider data is locked whole). The caller holds the connection's
    lock, shared at least, so no sync moves the item meanwhile. SQLite's writers take turns
    anyway."""
    if session.get_bind().dialect.name == "postgresql":
        await run(session, _TREE_LOCKS, {"item": item_id, "space": TREE_LOCK})


@lru_cache(maxsize=2)
def _own_links_statement(dialect: str) -> AnyPrepared:
    """(item, KR, weight) of the links of the items in parameter ``ids``. Built once."""
    return Prepared(
        sa.select(col(Link.work_item_id), col(Link.key_result_id), col(Link.weight)).where(
            among_parameter(col(Link.work_item_id), "ids", dialect)
        )
    )


async def _own_links(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Pairs]:
    """Each item's own links: its sorted (KR, weight) pairs."""
    stmt = _own_links_statement(session.get_bind().dialect.name)
    found: dict[uuid.UUID, list[tuple[uuid.UUID, float]]] = defaultdict(list)
    for batch in chunks(ids):
        for item_id, key_result_id, weight in await fetch_rows(session, stmt, {"ids": batch}):
            found[item_id].append((key_result_id, weight))
    return {item_id: tuple(sorted(pairs)) for item_id, pairs in found.items()}


_RULES = Prepared(
    sa.select(
        col(ClassificationRule.id), col(ClassificationRule.category),
        col(ClassificationRule.match),
    ).order_by(col(ClassificationRule.priority).desc(), col(ClassificationRule.id))
)  # fmt: skip


async def classification_rules(session: AsyncSession) -> list[Rule]:
    """Highest priority first; among equals, the rule created first."""
    rows = await fetch_rows(session, _RULES)
    return [Rule(rule_id, category, Matcher.of(match)) for rule_id, category, match in rows]


def _step(
    context: Context,
    node: Node,
    links: Mapping[uuid.UUID, tuple[tuple[uuid.UUID, float], ...]],
    rules: Sequence[Rule],
) -> Context:
    if node.deleted:
        return context
    own = links.get(node.id)
    matched = [rule.id for rule in rules if rule.matches(node.subject)]
    if not own and not matched:
        return context
    nearest = context.nearest
    if matched:
        nearest = {**nearest, **dict.fromkeys(matched, node.id)}
    if own:
        return Context(node.id, own, nearest)
    return Context(context.link_source, context.links, nearest)


@dataclass(frozen=True, slots=True)
class Decision:
    category: str | None
    by_item: uuid.UUID | None
    by_rule: uuid.UUID | None


def decide(context: Context, rules: Sequence[Rule]) -> Decision:
    if context.links:
        return Decision("strategic", context.link_source, None)
    for rule in rules:
        item = context.nearest.get(rule.id)
        if item is not None:
            return Decision(rule.category, item, rule.id)
    return Decision(None, None, None)


def _contexts(
    nodes: Mapping[uuid.UUID, Node],
    links: Mapping[uuid.UUID, tuple[tuple[uuid.UUID, float], ...]],
    rules: Sequence[Rule],
) -> dict[uuid.UUID, Context]:
    """Each node's context, parents before children, whatever order the nodes come in."""
    contexts: dict[uuid.UUID, Context] = {}
    for start in nodes:
        chain: list[Node] = []
        current: uuid.UUID | None = start
        seen: set[uuid.UUID] = set()
        while current is not None and current in nodes and current not in contexts:
            if current in seen:  # a cycle: treat where it closes as a root
                break
            seen.add(current)
            chain.append(nodes[current])
            current = nodes[current].parent_id
        inherited = contexts.get(current, EMPTY) if current is not None else EMPTY
        for node in reversed(chain):
            inherited = _step(inherited, node, links, rules)
            contexts[node.id] = inherited
    return contexts


async def refresh(
    session: AsyncSession,
    roots: Collection[uuid.UUID],
    *,
    leafness_of: Collection[uuid.UUID] = (),
    known: Mapping[uuid.UUID, Node] | None = None,
    unlinked: AbstractSet[uuid.UUID] = frozenset(),
    unlinked_from: Collection[uuid.UUID] = (),
) -> int:
    """Recompute the derived state of ``roots`` and everything below them, and whether their
    parents and the items in ``leafness_of`` (former parents) are still leaves. ``known``
    holds nodes as stored now, which are not read again; ``unlinked`` items (inserted by this
    transaction, and given no links) have no links to read; ``unlinked_from`` are the KRs that
    links of the roots were removed from by this transaction, whose linked effort moves.
    Returns how many items below the roots changed."""
    if not roots and not leafness_of:
        return 0
    # Whatever changed here may unlink an epic or move a KR's progress: look, once committed;
    # and merge the roll-up cells' rows the triggers appended.
    outbox.request_scan(session)
    cells.request_compaction(session)
    nodes = await _subtrees(session, set(roots), known or {})
    above = await _ancestors(session, nodes)
    everything = {**above, **nodes}
    links = await _own_links(session, [i for i in everything if i not in unlinked])
    # Only items with links have shares to normalise (a sync page mostly has none).
    await normalise_link_shares(session, [r for r in roots if r in links])
    rules = await classification_rules(session)
    contexts = _contexts(everything, links, rules)

    live_children: set[uuid.UUID] = {
        n.parent_id for n in nodes.values() if n.parent_id is not None and not n.deleted
    }
    changed_rows: list[dict[str, Any]] = []
    # The link sources the subtree's items counted toward before and count toward now: the
    # linked effort of their KRs moves with any leaf's status, estimate, leafness or links.
    sources: set[uuid.UUID] = set()
    for node in nodes.values():
        decision = decide(contexts[node.id], rules)
        state = (
            node.id not in live_children,
            decision.category,
            decision.by_item,
            decision.by_rule,
        )
        if node.stored[1] == "strategic" and node.stored[2] is not None:
            sources.add(node.stored[2])
        if decision.by_item is not None and decision.category == "strategic":
            sources.add(decision.by_item)
        if state != node.stored:
            changed_rows.append(
                {
                    "node_id": node.id,
                    "is_leaf": state[0],
                    "category": state[1],
                    "by_item": state[2],
                    "by_rule": state[3],
                }
            )
    if changed_rows:
        await _update_states(session, changed_rows)
    # The parents of the roots may have gained or lost their last live child.
    parents = {nodes[r].parent_id for r in roots if r in nodes}
    others = {i for i in (*leafness_of, *parents) if i is not None} - nodes.keys()
    if others:
        await refresh_leafness(session, others)
    touched = set(unlinked_from)
    touched |= {kr for source in sources & links.keys() for kr, _ in links[source]}
    # Sources outside what was read (an item moved away from its old one) are looked up,
    # with those of the parents whose leafness may have moved.
    touched |= await _key_results_of(session, sources - everything.keys(), others)
    if touched:
        await efforts.recompute(session, touched)
    return len(changed_rows)


@lru_cache(maxsize=2)
def _key_results_statement(dialect: str) -> AnyPrepared:
    """The KRs linked to the items in parameter ``sources``, or to the link sources of the
    strategic items in parameter ``decided``."""
    items = table_of(WorkItem)
    decided = sa.select(items.c.decided_by_item_id).where(
        among_parameter(items.c.id, "decided", dialect), items.c.category == "strategic"
    )
    return Prepared(
        sa.select(col(Link.key_result_id))
        .where(
            sa.or_(
                among_parameter(col(Link.work_item_id), "sources", dialect),
                col(Link.work_item_id).in_(decided),
            )
        )
        .distinct()
    )


async def _key_results_of(
    session: AsyncSession, sources: Collection[uuid.UUID], decided: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """The KRs linked to ``sources`` or to the link sources of ``decided``."""
    if not sources and not decided:
        return set()
    stmt = _key_results_statement(session.get_bind().dialect.name)
    found: set[uuid.UUID] = set()
    for batch in chunks([*sources, *decided]):
        params = {"sources": [i for i in batch if i in sources],
                  "decided": [i for i in batch if i in decided]}  # fmt: skip
        found.update(row[0] for row in await fetch_rows(session, stmt, params))
    return found


def _over_arrays(sql: str, **elements: Any) -> sa.TextClause:
    """PostgreSQL text over whole arrays (one round trip for many rows), its parameters
    typed as arrays of ``elements``."""
    arrays = (sa.bindparam(name, type_=postgresql.ARRAY(t)) for name, t in elements.items())
    return sa.text(sql).bindparams(*arrays)


_UNNEST_STATES = Statement(
    _over_arrays(
        "UPDATE work_items SET is_leaf = v.is_leaf, category = v.category,"
        " decided_by_item_id = v.by_item, decided_by_rule_id = v.by_rule"
        " FROM unnest(:ids, :leaves, :categories, :by_items, :by_rules)"
        " AS v(id, is_leaf, category, by_item, by_rule) WHERE work_items.id = v.id",
        ids=sa.Uuid(),
        leaves=sa.Boolean(),
        categories=sa.String(),
        by_items=sa.Uuid(),
        by_rules=sa.Uuid(),
    )
)


async def _update_states(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # One statement for every changed item, as for the shares below.
        names = {"ids": "node_id", "leaves": "is_leaf", "categories": "category",
                 "by_items": "by_item", "by_rules": "by_rule"}  # fmt: skip
        async with reused_plans(session, len(rows)):
            await run(
                session, _UNNEST_STATES,
                {param: [row[key] for row in rows] for param, key in names.items()},
            )  # fmt: skip
        return
    items = table_of(WorkItem)
    await session.exec(
        sa.update(items)
        .where(items.c.id == sa.bindparam("node_id"))
        .values(
            is_leaf=sa.bindparam("is_leaf"),
            category=sa.bindparam("category"),
            decided_by_item_id=sa.bindparam("by_item"),
            decided_by_rule_id=sa.bindparam("by_rule"),
        ),
        params=rows,
    )


@lru_cache(maxsize=2)
def _leafness_statement(dialect: str) -> Statement:
    items = table_of(WorkItem)
    child = items.alias("child")
    has_live_child = sa.exists().where(
        child.c.parent_id == items.c.id, child.c.deleted_at.is_(None)
    )
    return Statement(
        sa.update(items)
        .where(among_parameter(items.c.id, "ids", dialect))
        .values(is_leaf=~has_live_child)
    )


async def refresh_leafness(session: AsyncSession, ids: Collection[uuid.UUID]) -> None:
    """Whether each of ``ids`` still has a live child."""
    statement = _leafness_statement(session.get_bind().dialect.name)
    for batch in chunks(ids):
        await run(session, statement, {"ids": batch})


@lru_cache(maxsize=2)
def _normalise_statement(dialect: str) -> Statement:
    links = table_of(Link)
    other = links.alias("other")
    total = (
        sa.select(sa.func.sum(other.c.weight))
        .where(other.c.work_item_id == links.c.work_item_id)
        .scalar_subquery()
    )
    return Statement(
        sa.update(links)
        .where(among_parameter(links.c.work_item_id, "ids", dialect))
        .values(share=links.c.weight / total)
    )


async def normalise_link_shares(session: AsyncSession, ids: Collection[uuid.UUID]) -> None:
    """Each link's share of its item's link weights, for the links of ``ids``."""
    statement = _normalise_statement(session.get_bind().dialect.name)
    for batch in chunks(ids):
        await run(session, statement, {"ids": batch})
