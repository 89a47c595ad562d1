"""How a job asks to run again later, whichever queue runs it."""

from __future__ import annotations


class RetryLater(Exception):
    """Run this job again after ``defer`` seconds (arq's ``Retry``, queue-neutral)."""

    def __init__(self, defer: float, reason: str) -> None:
        super().__init__(reason)
        self.defer = defer
