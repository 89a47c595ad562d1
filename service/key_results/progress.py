"""Progress of key results and objectives (DESIGN section 3, item 8)."""

from __future__ import annotations

from collections.abc import Iterable


def manual_progress(*, start: float, target: float, current: float) -> float:
    """``(current - start) / (target - start)`` clamped to [0, 1].

    Works for decreasing targets too (start 10, target 2): moving toward the target is
    progress either way. A target equal to its start is refused on input.
    """
    return min(1.0, max(0.0, (current - start) / (target - start)))


def linked_progress(*, done_effort: float, total_effort: float) -> float:
    """Done effort over all effort of the work that counts for the KR; 0 with no work."""
    return done_effort / total_effort if total_effort > 0 else 0.0


def objective_progress(key_result_progress: Iterable[float]) -> float | None:
    """The mean of the key results' progress; None for an objective with no key results."""
    values = list(key_result_progress)
    return sum(values) / len(values) if values else None
