"""Creating, checking and revoking API tokens."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from service.auth import repository
from service.auth.scopes import Scope
from service.auth.tokens import display_prefix, generate_token, hash_token
from service.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from service.models import ApiToken

logger = logging.getLogger(__name__)

# Writing last_used_at on every request would turn each read into a write; a minute's
# resolution is what a person auditing tokens needs.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def create(
    *,
    session: AsyncSession,
    name: str,
    scope: Scope,
    expires_at: datetime | None = None,
    token: str | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token (``token`` given, or generated) and return it with its plain value."""
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput.at("expires_at", "expires_at must lie in the future")
    plain = token if token is not None else generate_token()
    row = ApiToken(
        name=name,
        scope=scope.value,
        token_hash=hash_token(plain),
        prefix=display_prefix(plain),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    logger.info("token.created", extra={"token_id": str(row.id), "scope": scope.value})
    return row, plain


async def authenticate(*, session: AsyncSession, token: str, required: Scope) -> repository.Grant:
    """What the live token behind ``token`` grants, if its scope allows ``required``."""
    row = await repository.grant_of(session, hash_token(token))
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the bearer token is unknown or revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("the bearer token has expired")
    if not Scope(row.scope).allows(required):
        raise Forbidden(f"this operation needs a {required.value} token; this one is {row.scope}")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        await repository.touch(session, row.id, now)
        row = row._replace(last_used_at=now)
    return row


async def revoke(*, session: AsyncSession, token_id: uuid.UUID) -> ApiToken:
    row = await repository.get(session, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        await session.flush()
        logger.info("token.revoked", extra={"token_id": str(row.id)})
    return row


async def register_bootstrap_token(*, session: AsyncSession, token: str) -> bool:
    """Register ``token`` as an admin token unless it already is; True when it was added.

    Replicas starting together may race here; the unique hash makes the loser a no-op.
    """
    if await repository.get_by_hash(session, hash_token(token)) is not None:
        return False
    try:
        async with session.begin_nested():
            await create(session=session, name="bootstrap", scope=Scope.admin, token=token)
    except IntegrityError:
        return False
    return True


async def create_first_admin_token(*, session: AsyncSession) -> str | None:
    """A new admin token when the database has none at all; shown once by ``serve``."""
    if await repository.any_exists(session):
        return None
    _, plain = await create(session=session, name="first admin", scope=Scope.admin)
    return plain
