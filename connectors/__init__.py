"""Connector plugins: the interface, the normalised work item, errors and discovery."""

from connectors.base import Connector, FetchStats
from connectors.errors import (
    AuthFailed,
    BadSignature,
    ConnectorError,
    Permanent,
    RateLimited,
    Transient,
)
from connectors.models import Kind, Page, StatusCategory, WorkItem
from connectors.registry import GROUP, PluginError, discover
from connectors.webhooks import WebhookAction, WebhookEvent, WebhookRequest

__all__ = [
    "AuthFailed",
    "BadSignature",
    "Connector",
    "ConnectorError",
    "FetchStats",
    "GROUP",
    "Kind",
    "Page",
    "Permanent",
    "PluginError",
    "RateLimited",
    "StatusCategory",
    "Transient",
    "WebhookAction",
    "WebhookEvent",
    "WebhookRequest",
    "WorkItem",
    "discover",
]
