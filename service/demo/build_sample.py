"""Writes the demo's Jira CSV export (``jira-export.csv``), deterministically:

    python -m service.demo.build_sample

The file is what Jira Cloud's "Export CSV (all fields)" writes, trimmed to the columns
okr-sync reads plus a few it ignores: repeated ``Labels`` columns, ``Parent id``,
``Custom field (…)`` columns, and local times ("23/Nov/26 1:05 PM") in Europe/Berlin.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

OUT = Path(__file__).with_name("jira-export.csv")
ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 6, 15, 9, 0, tzinfo=ZONE)
HEADER = [
    "Summary", "Issue key", "Issue id", "Issue Type", "Status", "Project key", "Project name",
    "Priority", "Resolution", "Assignee", "Created", "Updated", "Resolved", "Labels", "Labels",
    "Description", "Custom field (Story Points)", "Custom field (Epic Link)", "Parent id",
    "Status Category",
]  # fmt: skip
# project: (name, epics, stories per epic, loose bugs)
PROJECTS = {
    "PAY": ("Payments", 8, 12, 18),
    "CHK": ("Checkout", 6, 12, 15),
    "PLT": ("Platform", 9, 10, 20),
    "OPS": ("Operations", 4, 9, 12),
}
EPIC_THEMES = {
    "PAY": ["okr-growth", "okr-growth", "tech-debt", "", "okr-growth", "", "compliance", ""],
    "CHK": ["okr-growth", "okr-growth", "", "tech-debt", "okr-growth", ""],
    "PLT": ["tech-debt", "okr-reliability", "tech-debt", "", "okr-reliability", "", "", "", ""],
    "OPS": ["support", "okr-reliability", "support", ""],
}


def stamp(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%d/%b/%y %I:%M %p")


def main() -> None:
    rng = random.Random(2026)
    rows: list[list[str]] = []
    issue_id = 10000

    def add(project: str, kind: str, summary: str, labels: list[str], parent: str = "") -> str:
        nonlocal issue_id
        issue_id += 1
        number = sum(1 for r in rows if r[5] == project) + 1
        key = f"{project}-{number}"
        created = START + timedelta(hours=rng.randint(0, 24 * 170))
        roll = rng.random()
        if kind == "Epic":
            state = "In Progress" if roll < 0.7 else "Done"
        else:
            state = "Done" if roll < 0.72 else "In Progress" if roll < 0.86 else "To Do"
        resolution, resolved = "", ""
        if state == "Done":
            resolution = "Won't Do" if rng.random() < 0.06 else "Done"
            resolved = stamp(created + timedelta(hours=rng.randint(8, 24 * 40)))
        category = {"Done": "Done", "In Progress": "In Progress", "To Do": "To Do"}[state]
        status = {"Done": "Done", "In Progress": "In Progress", "To Do": "Backlog"}[state]
        points = "" if kind == "Epic" or rng.random() < 0.12 else str(rng.choice((1, 2, 3, 5, 8)))
        padded = (labels + ["", ""])[:2]
        rows.append([
            summary, key, str(issue_id), kind, status, project, PROJECTS[project][0],
            rng.choice(("Medium", "High", "Low")), resolution, f"dev{rng.randint(1, 12)}@acme.test",
            stamp(created), resolved or stamp(created + timedelta(hours=2)), resolved, *padded,
            "", points, "", parent, category,
        ])  # fmt: skip
        return str(issue_id)

    for project, (_, epics, stories, bugs) in PROJECTS.items():
        for e in range(epics):
            theme = EPIC_THEMES[project][e]
            epic = add(project, "Epic", f"{project} initiative {e + 1}", [theme] if theme else [])
            for s in range(stories):
                kind = "Bug" if rng.random() < 0.15 else "Story"
                extra = ["tech-debt"] if rng.random() < 0.08 else []
                add(project, kind, f"{project} {kind.lower()} {e + 1}.{s + 1}", extra, epic)
        for b in range(bugs):
            labels = [rng.choice(("support", "incident", "tech-debt", ""))]
            add(project, "Bug", f"{project} bug {b + 1}", [x for x in labels if x])
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    print(f"{len(rows)} issues written to {OUT}")  # noqa: T201


if __name__ == "__main__":
    main()
