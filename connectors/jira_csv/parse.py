"""Reading Jira's "Export CSV (all fields)": one row per issue, repeated columns for
multi-valued fields (``Labels``), ``Custom field (…)`` columns, local times without an
offset in the exporting user's time zone and date format."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo

from connectors.errors import Permanent
from connectors.jira.mapping import CANCELED_RESOLUTIONS, estimate
from connectors.models import Kind, StatusCategory, WorkItem

REQUIRED = ("Issue key", "Issue id", "Summary", "Issue Type", "Status", "Created", "Updated")
STORY_POINTS = ("Story Points", "Story point estimate")
# Jira's default export format ("23/Nov/26 1:05 PM") and the ISO-like ones sites configure.
DATE_FORMATS = (
    "%d/%b/%y %I:%M %p", "%d/%b/%Y %I:%M %p", "%d/%b/%y %H:%M", "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%m/%d/%Y %I:%M %p",
)  # fmt: skip
CATEGORIES = {"to do": StatusCategory.todo, "in progress": StatusCategory.in_progress}
KINDS = {"epic": Kind.epic, "initiative": Kind.initiative, "sub-task": Kind.subtask,
         "subtask": Kind.subtask}  # fmt: skip


class Table:
    """The export's rows with its header, where a name may head several columns."""

    def __init__(self, text: str) -> None:
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
        except StopIteration:
            raise Permanent("the CSV export is empty") from None
        self.columns: dict[str, list[int]] = defaultdict(list)
        for index, name in enumerate(header):
            self.columns[name.strip()].append(index)
        missing = [name for name in REQUIRED if name not in self.columns]
        if missing:
            raise Permanent(
                f"not a Jira CSV export: no {', '.join(missing)} column; export with "
                "'Export CSV (all fields)'"
            )
        self.rows = [row for row in reader if any(cell.strip() for cell in row)]

    def first(self, row: Sequence[str], *names: str) -> str:
        """The first non-empty cell under any of ``names``."""
        for name in names:
            for index in self.columns.get(name, ()):
                if index < len(row) and row[index].strip():
                    return row[index].strip()
        return ""

    def every(self, row: Sequence[str], name: str) -> list[str]:
        return [
            row[i].strip() for i in self.columns.get(name, ()) if i < len(row) and row[i].strip()
        ]


def parse_time(value: str, zone: tzinfo, line: int, column: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for pattern in DATE_FORMATS:
            try:
                # Jira writes local times with no offset; the zone is applied below.
                parsed = datetime.strptime(value, pattern)  # noqa: DTZ007
                break
            except ValueError:
                continue
    if parsed is None:
        raise Permanent(f"line {line}: cannot read {column} {value!r} as a date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def status_category(table: Table, row: Sequence[str]) -> StatusCategory:
    resolution = table.first(row, "Resolution").lower()
    category = table.first(row, "Status Category").lower()
    if category in CATEGORIES:
        return CATEGORIES[category]
    # A resolution means done; exports without a Status Category column say no more.
    if category == "done" or (not category and resolution and resolution != "unresolved"):
        return (
            StatusCategory.canceled if resolution in CANCELED_RESOLUTIONS else StatusCategory.done
        )
    return StatusCategory.todo


def items(
    text: str,
    *,
    zone: tzinfo,
    team_map: dict[str, str],
    story_points: str | None,
    site_url: str | None,
) -> Iterator[WorkItem]:
    table = Table(text)
    points = [f"Custom field ({story_points})"] if story_points else [
        f"Custom field ({name})" for name in STORY_POINTS
    ]  # fmt: skip
    for number, row in enumerate(table.rows, start=2):
        key = table.first(row, "Issue key")
        project = table.first(row, "Project key") or key.rsplit("-", 1)[0]
        type_name = table.first(row, "Issue Type")
        category = status_category(table, row)
        resolved = parse_time(table.first(row, "Resolved"), zone, number, "Resolved")
        created = parse_time(table.first(row, "Created"), zone, number, "Created")
        updated = parse_time(table.first(row, "Updated"), zone, number, "Updated")
        if created is None or updated is None:
            raise Permanent(f"line {number}: Created and Updated must be given")
        parent_id = table.first(row, "Parent id", "Parent")
        epic_link = table.first(row, "Custom field (Epic Link)", "Custom field (Parent Link)")
        yield WorkItem(
            external_id=table.first(row, "Issue id"),
            key=key,
            url=f"{site_url.rstrip('/')}/browse/{key}" if site_url else "",
            title=table.first(row, "Summary"),
            kind=KINDS.get(type_name.lower(), Kind.issue),
            type_name=type_name,
            status=table.first(row, "Status"),
            status_category=category,
            team_key=team_map.get(project),
            parent_external_id=parent_id or None,
            parent_key=None if parent_id else (epic_link or None),
            labels=tuple(table.every(row, "Labels")),
            containers=(project,),
            estimate=estimate(table.first(row, *points) or None),
            created_at=created,
            updated_at=updated,
            resolved_at=resolved if category in (StatusCategory.done, StatusCategory.canceled)
            else None,
        )  # fmt: skip
