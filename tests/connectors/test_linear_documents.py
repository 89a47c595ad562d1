"""Every GraphQL document the Linear connector sends, checked against Linear's published
schema, and the mapping rules the README documents."""

from __future__ import annotations

import graphql
import pytest

from connectors.linear import documents, mapping
from connectors.models import Kind, StatusCategory
from tests.fakes.linear import MAX_COMPLEXITY, MAX_FIRST, complexity, schema


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_each_document_is_valid_against_linears_schema(name: str) -> None:
    document = graphql.parse(documents.ALL[name])
    assert graphql.validate(schema(), document) == []
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    assert operation.name is not None
    assert operation.name.value == name  # the connector sends it as operationName


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_page_sizes_stay_inside_linears_limits(name: str) -> None:
    document = graphql.parse(documents.ALL[name])
    assert complexity(document) <= MAX_COMPLEXITY
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    for definition in operation.variable_definitions or ():
        if definition.variable.name.value == "first":
            assert definition.default_value is not None
            assert 0 < int(graphql.value_from_ast_untyped(definition.default_value)) <= MAX_FIRST


def test_the_scoring_counts_connections_times_first() -> None:
    small = graphql.parse("query { issues(first: 10) { nodes { id title } } }")
    large = graphql.parse("query { issues(first: 100) { nodes { id title state { name } } } }")
    assert complexity(small) == pytest.approx(10 * (1 + 0.2))
    assert complexity(large) == pytest.approx(100 * (1 + 0.2 + 1.1))


def _project(links: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "id": "p1", "slugId": "3d89ec1c20d3", "name": "Q2 Launch", "url": "",
        "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-02T00:00:00.000Z",
        "status": {"name": "In Progress", "type": "started"},
        "teams": {"nodes": [{"key": "WEB"}, {"key": "ENG"}]},
        "initiativeToProjects": {"nodes": [
            {"createdAt": at, "initiative": {"id": initiative}} for at, initiative in links
        ]},
    }  # fmt: skip


def test_a_project_in_several_initiatives_belongs_to_the_one_it_joined_first() -> None:
    project = _project([("2025-03-01T00:00:00.000Z", "late"), ("2025-02-01T00:00:00.000Z", "b"),
                        ("2025-02-01T00:00:00.000Z", "a")])  # fmt: skip
    item = mapping.project(project, teams=["ENG", "WEB"], team_map={"ENG": "core"})
    assert item.parent_external_id == "a"
    assert (item.kind, item.status_category) == (Kind.epic, StatusCategory.in_progress)
    assert item.team_key == "core"  # the first configured team working on it
    assert item.containers == ("ENG", "WEB")
    assert mapping.project(_project([]), teams=["WEB"], team_map={}).parent_external_id is None


@pytest.mark.parametrize(("state", "category"), [
    ("triage", "todo"), ("backlog", "todo"), ("unstarted", "todo"), ("started", "in_progress"),
    ("completed", "done"), ("canceled", "canceled"), ("duplicate", "canceled"),
])  # fmt: skip
def test_workflow_state_types_map_to_status_categories(state: str, category: str) -> None:
    raw = {
        "id": "i1", "identifier": "ENG-1", "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z", "state": {"name": state.title(), "type": state},
        "team": {"key": "ENG"}, "labelIds": ["l1", "gone"], "completedAt": None,
        "canceledAt": "2025-01-03T00:00:00.000Z" if state in ("canceled", "duplicate") else None,
    }  # fmt: skip
    item = mapping.issue(raw, team_map={}, labels={"l1": "bug"})
    assert item.status_category == category
    assert item.labels == ("bug",)
    assert (item.resolved_at is not None) == (category == "canceled")
