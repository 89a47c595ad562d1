"""The Jira CSV export connector: the export's quirks, and syncs of a file through the API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors import Kind, Permanent, StatusCategory
from connectors.jira_csv import JiraCsvConfig, JiraCsvConnector, NoCredentials
from connectors.jira_csv.parse import items
from tests import factories

HEADER = ["Summary", "Issue key", "Issue id", "Issue Type", "Status", "Project key",
          "Resolution", "Created", "Updated", "Resolved", "Labels", "Labels", "Labels",
          "Custom field (Story Points)", "Custom field (Epic Link)", "Parent id",
          "Status Category"]  # fmt: skip


def export(*rows: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


EPIC = ["Launch", "PAY-1", "101", "Epic", "In Progress", "PAY", "", "01/Oct/26 09:00 AM",
        "02/Oct/26 09:00 AM", "", "okr", "", "", "", "", "", "In Progress"]  # fmt: skip
STORY = ["Build it", "PAY-2", "102", "Story", "Done", "PAY", "Done", "02/Oct/26 10:30 AM",
         "31/Dec/26 11:30 PM", "31/Dec/26 11:30 PM", "a", "", "b", "3", "", "101",
         "Done"]  # fmt: skip
DROPPED = ["Never mind", "PAY-3", "103", "Sub-task", "Closed", "PAY", "Won't Do",
           "02/Oct/26 10:30 AM", "03/Oct/26 10:30 AM", "03/Oct/26 10:30 AM", "", "", "", "2.5",
           "", "102", "Done"]  # fmt: skip
LEGACY = ["Old style", "PAY-4", "104", "Bug", "Open", "PAY", "", "2026-10-05 08:00",
          "2026-10-05 08:00", "", "", "", "", "", "PAY-1", "", "To Do"]  # fmt: skip


def parse(text: str, zone: str = "Europe/Berlin") -> list:  # type: ignore[type-arg]
    return list(items(text, zone=ZoneInfo(zone), team_map={"PAY": "payments"},
                      story_points=None, site_url="https://acme.atlassian.net"))  # fmt: skip


def test_an_export_is_normalised_like_the_api() -> None:
    epic, story, dropped, legacy = parse(export(EPIC, STORY, DROPPED, LEGACY))
    assert (epic.kind, epic.status_category, epic.labels) == (Kind.epic, "in_progress", ("okr",))
    assert epic.url == "https://acme.atlassian.net/browse/PAY-1"
    assert story.labels == ("a", "b")  # repeated Labels columns, blanks dropped
    assert (story.parent_external_id, story.estimate, story.team_key) == ("101", 3.0, "payments")
    # Local Berlin time (UTC+1 in winter): 23:30 on Dec 31 is 22:30 UTC, still in 2026.
    assert story.resolved_at == datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert story.created_at == datetime(2026, 10, 2, 8, 30, tzinfo=UTC)  # UTC+2 in summer
    assert (dropped.kind, dropped.status_category) == (Kind.subtask, StatusCategory.canceled)
    assert dropped.estimate == 2.5
    assert (legacy.parent_external_id, legacy.parent_key) == (None, "PAY-1")
    assert legacy.status_category == StatusCategory.todo
    assert legacy.resolved_at is None


def test_what_is_not_an_export_is_refused_clearly() -> None:
    with pytest.raises(Permanent, match="no Issue id"):
        parse("Summary,Issue key\nx,PAY-1\n")
    with pytest.raises(Permanent, match="empty"):
        parse("")
    bad = list(STORY)
    bad[7] = "yesterday"
    with pytest.raises(Permanent, match=r"line 2: cannot read Created 'yesterday'"):
        parse(export(bad))


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        JiraCsvConfig(path="/x.csv", timezone="Mars/Olympus")


async def test_incremental_reads_skip_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(export(EPIC, STORY), encoding="utf-8")
    async with httpx.AsyncClient() as http:
        connector = JiraCsvConnector(
            config=JiraCsvConfig(path=str(path), page_size=1), credentials=NoCredentials(),
            http=http,
        )  # fmt: skip
        pages = [page async for page in connector.fetch(None)]
        assert [len(p.items) for p in pages] == [1, 1]
        assert pages[0].cursor is None
        assert pages[-1].cursor is not None
        assert [page async for page in connector.fetch(pages[-1].cursor)] == []
        path.write_text(export(EPIC), encoding="utf-8")
        assert len([page async for page in connector.fetch(pages[-1].cursor)]) == 1
        path.unlink()
        with pytest.raises(Permanent, match="cannot read"):
            await connector.check()


async def test_a_file_syncs_through_the_api_and_deletions_follow_the_file(
    admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    await factories.team(admin, "payments")
    path = tmp_path / "export.csv"
    path.write_text(export(EPIC, STORY, DROPPED), encoding="utf-8")
    body = {"provider": "jira_csv", "name": "csv", "credentials": {},
            "config": {"path": str(path), "team_map": {"PAY": "payments"}}}  # fmt: skip
    connection = await factories.created(admin.post("/v1/connections", json=body))
    check = await admin.post(f"/v1/connections/{connection['id']}/check")
    assert check.status_code == 200, check.text
    response = await admin.post(f"/v1/connections/{connection['id']}/sync", json={"mode": "full"})
    run = (await admin.get(f"/v1/sync-runs/{response.json()['id']}")).json()
    assert (run["status"], run["created"]) == ("succeeded", 3)
    story = (await admin.get("/v1/work-items/PAY-2")).json()
    assert (story["parent"], story["team"]) == ("PAY-1", "payments")
    path.write_text(export(EPIC, STORY), encoding="utf-8")
    response = await admin.post(f"/v1/connections/{connection['id']}/sync", json={"mode": "full"})
    run = (await admin.get(f"/v1/sync-runs/{response.json()['id']}")).json()
    assert run["deleted"] == 1
    assert (await admin.get("/v1/work-items/PAY-2")).json()["is_leaf"] is True
