"""All tables, on one metadata, so that Alembic sees every one of them."""

from service.models.base import metadata
from service.models.hooks import InboundWebhook
from service.models.okrs import CatalogVersion, CheckIn, KeyResult, Objective, Period, Team
from service.models.portfolio import (
    ClassificationRule,
    KeyResultEffort,
    Link,
    LinkRule,
    RollupCell,
    SourceCell,
)
from service.models.sync import Connection, SyncRun, WorkItem
from service.models.tokens import ApiToken
from service.models.watches import EpicWatch, KeyResultWatch, TeamShareWatch
from service.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookMessage

__all__ = [
    "ApiToken",
    "CatalogVersion",
    "CheckIn",
    "ClassificationRule",
    "Connection",
    "EpicWatch",
    "InboundWebhook",
    "KeyResult",
    "KeyResultEffort",
    "KeyResultWatch",
    "Link",
    "LinkRule",
    "Objective",
    "Period",
    "RollupCell",
    "SourceCell",
    "SyncRun",
    "Team",
    "TeamShareWatch",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WorkItem",
    "metadata",
]
