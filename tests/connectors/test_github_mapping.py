"""GitHub issues, as GitHub publishes and delivers them, mapped to work items."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from connectors.github.mapping import key_of_url, normalize
from connectors.models import Kind, StatusCategory
from tests.upstream import load

EXAMPLE = load("github/rest/examples/issue-items.json")[0]
CLOSED = load("github/webhooks/examples-zulip/issues__closed.json")["issue"]


def test_the_published_example_maps_with_repository_milestone_labels_and_link() -> None:
    item = normalize(EXAMPLE, team_map={"octocat/hello-world": "web"}, epic_labels=["epic"])
    assert (item.external_id, item.key) == ("1", "octocat/Hello-World#1347")
    assert item.url == "https://github.com/octocat/Hello-World/issues/1347"
    assert item.containers == ("octocat/Hello-World", "v1.0")
    assert item.labels == ("bug",)
    assert item.team_key == "web"  # repository names compare case-insensitively
    assert (item.kind, item.status_category, item.resolved_at) == (Kind.issue, "todo", None)
    assert item.created_at == datetime(2011, 4, 22, 13, 33, 48, tzinfo=UTC)


def test_a_real_closed_issue_is_done_at_its_closing_time() -> None:
    item = normalize(CLOSED, team_map={}, epic_labels=["epic"])
    assert CLOSED["state_reason"] == "completed"
    assert item.status_category == StatusCategory.done
    assert item.resolved_at == datetime.fromisoformat(CLOSED["closed_at"])
    assert item.status == "closed (completed)"


@pytest.mark.parametrize(("reason", "category"), [
    ("not_planned", "canceled"), ("duplicate", "canceled"), ("completed", "done"), (None, "done"),
])  # fmt: skip
def test_closed_as_not_planned_or_duplicate_is_canceled(reason: str | None, category: str) -> None:
    raw = copy.deepcopy(CLOSED)
    raw["state_reason"] = reason
    item = normalize(raw, team_map={}, epic_labels=[])
    assert item.status_category == category
    assert item.resolved_at == datetime.fromisoformat(CLOSED["closed_at"])


def test_epics_by_issue_type_or_by_configured_label() -> None:
    by_type = dict(EXAMPLE, type={"id": 3, "name": "Epic"}, labels=[])
    by_label = dict(EXAMPLE, labels=[{"name": "Initiative"}])
    assert normalize(by_type, team_map={}, epic_labels=[]).kind == Kind.epic
    assert normalize(by_type, team_map={}, epic_labels=[]).type_name == "Epic"
    assert normalize(by_label, team_map={}, epic_labels=["initiative"]).kind == Kind.epic
    assert normalize(by_label, team_map={}, epic_labels=["epic"]).kind == Kind.issue


def test_the_parent_comes_from_parent_issue_url_unless_known_from_the_other_side() -> None:
    child = dict(EXAMPLE, parent_issue_url="https://ghe.acme.test/api/v3/repos/acme/api/issues/7")
    assert normalize(child, team_map={}, epic_labels=[]).parent_key == "acme/api#7"
    assert normalize(child, team_map={}, epic_labels=[], parent_key="acme/x#1").parent_key == (
        "acme/x#1"
    )
    assert key_of_url(None) is None
    assert key_of_url("https://api.github.com/repos/acme/api") is None
