"""Jira issues to work items, on real Jira Cloud payloads (devlake's captures, Mattermost's
webhook fixtures)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import Kind, StatusCategory
from connectors.jira.mapping import FieldIds, estimate, kind, normalize, started_at, status_category
from tests.upstream import jsonl, load

SITE = "https://merico.atlassian.net"
ISSUES = {issue["key"]: issue for _, issue in jsonl("jira/devlake/agile-board-issues.jsonl")}
STATUSES = [status for _, status in jsonl("jira/devlake/statuses.jsonl")]
IN_PROGRESS = frozenset(s["id"] for s in STATUSES if s["statusCategory"]["key"] == "indeterminate")


def issue(key: str) -> dict[str, Any]:
    return copy.deepcopy(ISSUES[key])


class TestNormalize:
    def test_every_recorded_issue_normalises(self) -> None:
        for raw in ISSUES.values():
            item = normalize(raw, site=SITE, ids=FieldIds(), team_map={})
            assert item.external_id == raw["id"]
            assert item.updated_at.tzinfo is UTC

    def test_subtask_points_at_its_parent_by_id(self) -> None:
        raw = issue("EE-25")
        item = normalize(raw, site=SITE, ids=FieldIds(), team_map={"EE": "enterprise"})
        assert item.kind is Kind.subtask
        assert item.parent_external_id == raw["fields"]["parent"]["id"] == ISSUES["EE-1"]["id"]
        assert item.parent_key is None
        assert item.team_key == "enterprise"
        assert item.containers == ("EE",)
        assert item.url == f"{SITE}/browse/EE-25"

    def test_epic_and_story_under_it(self) -> None:
        epic = normalize(issue("K5-4"), site=SITE, ids=FieldIds(), team_map={})
        story = normalize(issue("K5-3"), site=SITE, ids=FieldIds(), team_map={})
        assert (epic.kind, story.kind) == (Kind.epic, Kind.issue)
        assert story.parent_external_id == ISSUES["K5-4"]["id"]

    def test_timestamps_are_normalised_to_utc(self) -> None:
        raw = issue("EE-1")
        assert raw["fields"]["created"] == "2020-06-12T08:13:13.360+0800"
        item = normalize(raw, site=SITE, ids=FieldIds(), team_map={})
        assert item.created_at == datetime(2020, 6, 12, 0, 13, 13, 360000, tzinfo=UTC)

    def test_data_center_epic_link_names_the_parent_by_key(self) -> None:
        raw = issue("EE-6")
        raw["fields"]["customfield_10014"] = "EE-100"
        item = normalize(raw, site=SITE, ids=FieldIds(epic_link="customfield_10014"), team_map={})
        assert (item.parent_external_id, item.parent_key) == (None, "EE-100")

    def test_data_center_parent_link_puts_an_epic_under_its_initiative(self) -> None:
        raw = issue("K5-4")  # an epic
        raw["fields"]["customfield_10200"] = "K5-100"
        ids = FieldIds(epic_link="customfield_10014", parent_link="customfield_10200")
        item = normalize(raw, site=SITE, ids=ids, team_map={})
        assert (item.kind, item.parent_key) == (Kind.epic, "K5-100")

    def test_cloud_parent_wins_over_the_legacy_link_fields(self) -> None:
        raw = issue("EE-25")
        raw["fields"]["customfield_10014"] = "EE-999"
        item = normalize(raw, site=SITE, ids=FieldIds(epic_link="customfield_10014"), team_map={})
        assert (item.parent_external_id, item.parent_key) == (ISSUES["EE-1"]["id"], None)

    def test_story_points_from_the_configured_field_as_number_or_string(self) -> None:
        raw = issue("EE-1")
        ids = FieldIds(story_points="customfield_10024")
        assert raw["fields"]["customfield_10024"] == "-1"  # recorded as a string
        assert normalize(raw, site=SITE, ids=ids, team_map={}).estimate == -1.0
        raw["fields"]["customfield_10024"] = 5
        assert normalize(raw, site=SITE, ids=ids, team_map={}).estimate == 5.0

    def test_mattermost_cloud_webhook_issue_normalises(self) -> None:
        raw = load("jira/mattermost-webhooks/webhook-cloud-issue-created-many-fields.json")["issue"]
        item = normalize(raw, site="https://mmtest.atlassian.net", ids=FieldIds(), team_map={})
        assert (item.key, item.kind, item.status_category) == (
            "KT-22",
            Kind.issue,
            StatusCategory.todo,
        )
        assert item.labels == ("Label1", "Label2")


class TestStatusCategory:
    def test_status_category_decides_not_the_status_name(self) -> None:
        raw = issue("EE-1")
        # Recorded: a status named "已完成" (done) that sits in the `new` category.
        assert raw["fields"]["status"]["statusCategory"]["key"] == "new"
        assert status_category(raw["fields"]) is StatusCategory.todo

    @pytest.mark.parametrize(
        ("category", "resolution", "expected"),
        [
            ("indeterminate", None, StatusCategory.in_progress),
            ("done", "Done", StatusCategory.done),
            ("done", "Fixed", StatusCategory.done),
            ("done", "Won't Do", StatusCategory.canceled),
            ("done", "Duplicate", StatusCategory.canceled),
            ("done", "Declined", StatusCategory.canceled),
            ("new", None, StatusCategory.todo),
        ],
    )
    def test_categories_and_resolutions(
        self, category: str, resolution: str | None, expected: StatusCategory
    ) -> None:
        fields = issue("EE-1")["fields"]
        fields["status"]["statusCategory"]["key"] = category
        fields["resolution"] = {"name": resolution} if resolution else None
        assert status_category(fields) is expected

    def test_done_without_resolution_date_resolves_at_the_category_change(self) -> None:
        raw = issue("EE-1")
        raw["fields"]["status"]["statusCategory"]["key"] = "done"
        raw["fields"]["resolutiondate"] = None
        raw["fields"]["statuscategorychangedate"] = "2021-02-01T10:00:00.000+0100"
        item = normalize(raw, site=SITE, ids=FieldIds(), team_map={})
        assert item.resolved_at == datetime(2021, 2, 1, 9, 0, tzinfo=UTC)

    def test_open_issue_has_no_resolution_time(self) -> None:
        raw = issue("EE-1")  # todo category, though a resolution date was recorded
        assert normalize(raw, site=SITE, ids=FieldIds(), team_map={}).resolved_at is None


class TestKindAndEstimate:
    @pytest.mark.parametrize(
        ("issuetype", "expected"),
        [
            ({"name": "Story", "subtask": False, "hierarchyLevel": 0}, Kind.issue),
            ({"name": "Sub-task", "subtask": True}, Kind.subtask),
            ({"name": "Epic", "hierarchyLevel": 1}, Kind.epic),
            ({"name": "Epic"}, Kind.epic),  # Data Center sends no hierarchyLevel
            ({"name": "Initiative", "hierarchyLevel": 2}, Kind.initiative),
        ],
    )
    def test_kind_from_hierarchy_level(self, issuetype: dict[str, Any], expected: Kind) -> None:
        assert kind(issuetype) is expected

    @pytest.mark.parametrize(
        ("value", "expected"), [(3, 3.0), (2.5, 2.5), ("8", 8.0), (" 5 ", 5.0), ("", None),
                                ("n/a", None), (None, None), (True, None), ({"v": 1}, None),
                                ("NaN", None), ("inf", None), (float("nan"), None)]
    )  # fmt: skip
    def test_estimate(self, value: Any, expected: float | None) -> None:
        assert estimate(value) == expected


class TestStartedAt:
    def test_first_move_into_an_in_progress_status_whatever_the_order(self) -> None:
        histories = [
            {"created": "2021-03-05T10:00:00.000+0000", "items": [{"field": "status", "to": "3"}]},
            {"created": "2021-03-01T10:00:00.000+0800", "items": [{"field": "status", "to": "3"}]},
            {"created": "2021-02-01T10:00:00.000+0000", "items": [{"field": "summary", "to": "3"}]},
            {"created": "2021-02-02T10:00:00.000+0000", "items": [{"field": "status", "to": "1"}]},
        ]
        assert started_at(histories, IN_PROGRESS) == datetime(2021, 3, 1, 2, 0, tzinfo=UTC)

    def test_recorded_changelog_with_no_in_progress_move(self) -> None:
        histories = issue("EE-1")["changelog"]["histories"]
        assert started_at(histories, frozenset({"no-such-status"})) is None
        assert started_at([], IN_PROGRESS) is None
