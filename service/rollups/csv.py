"""Roll-ups as spreadsheet-ready CSV: one row per scope and category."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from service.rollups.schemas import Categories, Rollup, Trend

CATEGORIES = ("strategic", "improvement", "heartbeat")
PORTFOLIO = "(portfolio)"


def _rows(categories: Categories) -> Iterable[tuple[str, float, float, int]]:
    for name in CATEGORIES:
        total = getattr(categories, name)
        yield name, total.effort, total.share, total.items


def _render(header: list[str], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def rollup_csv(rollup: Rollup) -> str:
    scope = rollup.team.key if rollup.team else PORTFOLIO
    head = [rollup.period.name, rollup.basis]
    rows: list[list[object]] = [
        [*head, scope, name, effort, share, items]
        for name, effort, share, items in _rows(rollup.categories)
    ]
    for child in rollup.teams:
        rows += [
            [*head, child.team.key, name, effort, share, items]
            for name, effort, share, items in _rows(child.categories)
        ]
    return _render(["period", "basis", "team", "category", "effort", "share", "items"], rows)


def trend_csv(trend: Trend) -> str:
    scope = trend.team.key if trend.team else PORTFOLIO
    rows: list[list[object]] = [
        [trend.period.name, trend.basis, scope, point.start.isoformat(),
         point.end.isoformat(), name, effort, share, items]
        for point in trend.points
        for name, effort, share, items in _rows(point.categories)
    ]  # fmt: skip
    header = ["period", "basis", "team", "start", "end", "category", "effort", "share", "items"]
    return _render(header, rows)
