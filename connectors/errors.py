"""What a connector raises. The sync engine decides from the class what to do next::

ConnectorError
├── AuthFailed     credentials refused: fail the sync at once, do not retry
├── RateLimited    the provider asked us to wait ``retry_after`` seconds
├── Transient      a fault that may pass (5xx, timeout, reset): retry with backoff
├── Permanent      a fault that will not pass by retrying (bad JQL, 404 project)
└── BadSignature   an inbound webhook whose signature does not verify
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises."""


class AuthFailed(ConnectorError):
    """The provider refused the credentials."""


class RateLimited(ConnectorError):
    """The provider asked the caller to wait before the next request."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ConnectorError):
    """A fault that may pass on its own: retry later."""


class Permanent(ConnectorError):
    """A fault that retrying will not fix."""


class BadSignature(ConnectorError):
    """An inbound webhook failed verification."""
