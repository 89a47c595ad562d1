"""Rules for connections: a known provider, config valid for it, credentials kept encrypted."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors import Connector, ConnectorError
from connectors.registry import ConnectorClass
from service.connections import repository
from service.connections.schemas import (
    CheckResult,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionOut,
    ConnectionUpdate,
)
from service.crypto import Vault
from service.db import flush_or_conflict
from service.derived import efforts
from service.errors import Conflict, InvalidInput
from service.models import Connection, Link, WorkItem
from service.pagination import Page, PageParams
from service.refs import Resolver

logger = logging.getLogger(__name__)

resolver = Resolver("connection", repository.get, repository.get_by_name)


def connector_class(registry: Mapping[str, ConnectorClass], provider: str) -> ConnectorClass:
    try:
        return registry[provider]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        raise InvalidInput.at(
            "provider", f"no connector for provider {provider!r}; installed: {known}"
        ) from None


def _validated(model: type[BaseModel], value: dict[str, Any], field: str) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = [
            # Never echo the input: for credentials it is the secret itself.
            {"loc": ["body", field, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        raise InvalidInput(f"{field} is not valid for this provider", errors=errors) from None


def build_connector(
    *,
    registry: Mapping[str, ConnectorClass],
    vault: Vault,
    connection: Connection,
    http: httpx.AsyncClient,
) -> Connector[Any, Any]:
    """A ready connector for a stored connection, its credentials decrypted in memory only."""
    return connector_of(
        registry, vault, http,
        provider=connection.provider, config=connection.config,
        credentials_encrypted=connection.credentials_encrypted,
    )  # fmt: skip


def connector_of(
    registry: Mapping[str, ConnectorClass],
    vault: Vault,
    http: httpx.AsyncClient,
    *,
    provider: str,
    config: Mapping[str, Any],
    credentials_encrypted: str,
) -> Connector[Any, Any]:
    """``build_connector`` from a connection's columns."""
    cls = registry[provider]
    credentials = cls.credentials_model.model_validate(vault.decrypt_json(credentials_encrypted))
    return cls(config=cls.config_model.model_validate(config), credentials=credentials, http=http)


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    return value


def plain_credentials(credentials: BaseModel) -> dict[str, Any]:
    """The credentials as JSON with their secrets in clear, for encryption.

    pydantic masks ``SecretStr`` when dumping to JSON; encrypting that mask would store
    ``**********`` instead of the secret.
    """
    plain: dict[str, Any] = to_jsonable_python(_revealed(credentials.model_dump(mode="python")))
    return plain


def out(connection: Connection) -> ConnectionOut:
    return ConnectionOut.model_validate(connection)


async def create(
    *,
    session: AsyncSession,
    registry: Mapping[str, ConnectorClass],
    vault: Vault,
    data: ConnectionCreate,
) -> ConnectionCreated:
    cls = connector_class(registry, data.provider)
    config = _validated(cls.config_model, data.config, "config")
    credentials = _validated(cls.credentials_model, data.credentials, "credentials")
    if await repository.get_by_name(session, data.name) is not None:
        raise Conflict(f"a connection named {data.name!r} exists already")
    generated = None if data.webhook_secret else secrets.token_urlsafe(32)
    connection = Connection(
        provider=data.provider,
        name=data.name,
        config=config.model_dump(mode="json"),
        credentials_encrypted=vault.encrypt_json(plain_credentials(credentials)),
        webhook_secret_encrypted=vault.encrypt(data.webhook_secret or generated or ""),
        sync_interval_minutes=data.sync_interval_minutes,
    )
    session.add(connection)
    await flush_or_conflict(session, f"a connection named {data.name!r} exists already")
    logger.info(
        "connection.created", extra={"connection_id": str(connection.id), "provider": data.provider}
    )
    return ConnectionCreated.model_validate(
        {**out(connection).model_dump(), "webhook_secret": generated}
    )


async def update(
    *,
    session: AsyncSession,
    registry: Mapping[str, ConnectorClass],
    vault: Vault,
    connection: Connection,
    data: ConnectionUpdate,
) -> tuple[ConnectionOut, bool]:
    """Apply the change; the flag says stored items must be re-synced in full.

    A new config can change how items are normalised (team map, estimate field), so the
    items already stored are brought up to date by a full sync, not only new ones.
    """
    cls = connector_class(registry, connection.provider)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise InvalidInput.at(field, f"{field} cannot be null")
    resync = False
    if "name" in changes and changes["name"] != connection.name:
        if await repository.get_by_name(session, changes["name"]) is not None:
            raise Conflict(f"a connection named {changes['name']!r} exists already")
        connection.name = changes["name"]
    if "config" in changes:
        config = _validated(cls.config_model, changes["config"], "config").model_dump(mode="json")
        resync = config != connection.config
        connection.config = config
    if "credentials" in changes:
        credentials = _validated(cls.credentials_model, changes["credentials"], "credentials")
        connection.credentials_encrypted = vault.encrypt_json(plain_credentials(credentials))
    if "webhook_secret" in changes:
        connection.webhook_secret_encrypted = vault.encrypt(changes["webhook_secret"])
    if "sync_interval_minutes" in changes:
        connection.sync_interval_minutes = changes["sync_interval_minutes"]
    if resync:
        connection.cursor = None
    connection.updated_at = datetime.now(UTC)
    session.add(connection)
    await flush_or_conflict(session, f"a connection named {connection.name!r} exists already")
    return out(connection), resync


async def list_page(
    *, session: AsyncSession, page: PageParams, provider: str | None
) -> Page[ConnectionOut]:
    rows = await repository.list_page(session, page, provider=provider)
    rows, next_cursor = page.split(rows, lambda c: c.id)
    return Page(items=[out(c) for c in rows], next_cursor=next_cursor)


async def delete(*, session: AsyncSession, connection: Connection) -> None:
    """Delete the connection with its synced items and sync runs."""
    # The KRs its items are linked to lose their linked effort: the items' leaves count
    # toward no other item's links (an item's parent is of its own connection).
    items = select(WorkItem.id).where(WorkItem.connection_id == connection.id)
    linked = select(Link.key_result_id).where(col(Link.work_item_id).in_(items)).distinct()
    key_results = set((await session.exec(linked)).all())
    await session.delete(connection)
    await session.flush()
    await efforts.recompute(session, key_results)


async def check(
    *,
    registry: Mapping[str, ConnectorClass],
    vault: Vault,
    connection: Connection,
    http: httpx.AsyncClient,
) -> CheckResult:
    connector = build_connector(registry=registry, vault=vault, connection=connection, http=http)
    try:
        await connector.check()
    except ConnectorError as exc:
        return CheckResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    return CheckResult(ok=True)
