"""All tables, on one metadata, so that Alembic sees every one of them."""

from service.models.base import metadata
from service.models.hooks import WebhookDelivery
from service.models.okrs import CheckIn, KeyResult, Objective, Period, Team
from service.models.portfolio import (
    ClassificationRule,
    EffectiveLink,
    KeyResultEffort,
    Link,
    LinkRule,
)
from service.models.sync import Connection, SyncRun, WorkItem
from service.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "CheckIn",
    "ClassificationRule",
    "Connection",
    "EffectiveLink",
    "KeyResult",
    "KeyResultEffort",
    "Link",
    "LinkRule",
    "Objective",
    "Period",
    "SyncRun",
    "Team",
    "WebhookDelivery",
    "WorkItem",
    "metadata",
]
