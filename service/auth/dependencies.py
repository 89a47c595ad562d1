"""Route guards: every ``/v1`` operation declares the scope it needs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import service
from service.auth.repository import Grant
from service.auth.scopes import Scope
from service.deps import SessionDep
from service.errors import Unauthenticated

_bearer = HTTPBearer(
    auto_error=False, description="An API token: `okr-sync token create` or `/v1/tokens`."
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _guard(required: Scope) -> Any:
    async def check(session: SessionDep, credentials: BearerDep) -> Grant:
        if credentials is None:
            raise Unauthenticated("send an API token as `Authorization: Bearer <token>`")
        return await service.authenticate(
            session=session, token=credentials.credentials, required=required
        )

    check.__name__ = f"require_{required.value}"
    return check


def requires(required: Scope) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the guard, and the scope in the OpenAPI."""
    return {
        "dependencies": [Depends(_guard(required))],
        "openapi_extra": {"x-required-scope": required.value},
    }


READ = requires(Scope.read)
WRITE = requires(Scope.write)
ADMIN = requires(Scope.admin)
