"""The plugin interface every connector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel

from connectors.errors import BadSignature
from connectors.models import Page
from connectors.webhooks import WebhookEvent, WebhookRequest

ConfigT = TypeVar("ConfigT", bound=BaseModel)
CredentialsT = TypeVar("CredentialsT", bound=BaseModel)


@dataclass
class FetchStats:
    """What a fetch cost, for the sync run's record."""

    api_calls: int = 0
    retries: int = field(default=0)


class Connector(ABC, Generic[ConfigT, CredentialsT]):
    """A source of work items. It knows its provider's API and nothing of the database.

    Subclasses name themselves in ``provider``, declare ``config_model`` and
    ``credentials_model`` (validated before the connector is built), and register through
    the ``okr_sync.connectors`` entry-point group.
    """

    provider: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    credentials_model: ClassVar[type[BaseModel]]

    def __init__(self, *, config: ConfigT, credentials: CredentialsT, http: httpx.AsyncClient):
        self.config = config
        self.credentials = credentials
        self.http = http
        self.stats = FetchStats()

    @abstractmethod
    async def check(self) -> None:
        """Prove the credentials work; raise ``AuthFailed`` when they do not."""

    @abstractmethod
    def fetch(self, cursor: str | None) -> AsyncGenerator[Page, None]:
        """Pages of items changed since ``cursor``; every item when ``cursor`` is None."""

    async def recheck(self, external_ids: Sequence[str]) -> AsyncGenerator[Page, None]:  # noqa: ARG002
        """Called after a full fetch, before the items it did not see are marked deleted:
        pages of those among ``external_ids`` the provider still has in scope, read now.
        A connector whose paging can pass over an item while others change (offsets into a
        search) reads them back here; the default trusts the fetch."""
        return
        yield  # an async generator that yields nothing

    def verify_webhook(self, request: WebhookRequest, secret: str) -> None:  # noqa: ARG002
        """Raise ``BadSignature`` unless ``request`` is signed with ``secret`` as the provider
        signs. Connectors without webhooks take none."""
        raise BadSignature(f"{self.provider} connections take no webhooks")

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:  # noqa: ARG002
        """What a verified request asks for; called only after ``verify_webhook``."""
        raise BadSignature(f"{self.provider} connections take no webhooks")
