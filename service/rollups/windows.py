"""The time windows roll-ups are measured over: a period, or the weeks or months of one.
Bounds are UTC midnights; every window is half-open, [start, end)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum


class Interval(StrEnum):
    week = "week"
    month = "month"


@dataclass(frozen=True, slots=True)
class Window:
    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _next_boundary(day: date, interval: Interval) -> date:
    if interval is Interval.week:  # ISO weeks start on Monday
        return day + timedelta(days=7 - day.weekday())
    return next_month(day)


def split(window: Window, interval: Interval) -> Iterator[Window]:
    """Calendar weeks (Monday first) or months, cut to the window at both ends."""
    start = window.start
    while start < window.end:
        end = min(_next_boundary(start, interval), window.end)
        yield Window(start, end)
        start = end
