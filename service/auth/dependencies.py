"""Route guards: every ``/v1`` operation declares the scope it needs."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from service.auth import service
from service.auth.repository import Grant
from service.auth.scopes import Scope
from service.deps import SessionDep
from service.errors import Unauthenticated
from service.query_guard import known_query_only

_bearer = HTTPBearer(
    auto_error=False, description="An API token: `okr-sync token create` or `/v1/tokens`."
)
# The scheme as the OpenAPI document names it (``requires``, ``openapi.install``).
SECURITY_SCHEMES = {
    _bearer.scheme_name: _bearer.model.model_dump(mode="json", by_alias=True, exclude_none=True)
}


def _guard(required: Scope) -> Any:
    # One dependency where there were three (the query's check, the bearer scheme, this):
    # FastAPI works out each of a route's dependencies again on every request, about 85,000
    # instructions each, 2-3% of a one-row read. The guard reads the header as the scheme
    # did, and the scheme is documented by hand (``requires``).
    async def check(request: Request, session: SessionDep) -> Grant:
        await known_query_only(request)
        credentials = await _bearer(request)
        if credentials is None:
            raise Unauthenticated("send an API token as `Authorization: Bearer <token>`")
        return await service.authenticate(
            session=session, token=credentials.credentials, required=required
        )

    check.__name__ = f"require_{required.value}"
    return check


def requires(required: Scope) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the guard, and in the OpenAPI the scope and
    the bearer scheme."""
    return {
        "dependencies": [Depends(_guard(required))],
        "openapi_extra": {
            "x-required-scope": required.value,
            "security": [{name: []} for name in SECURITY_SCHEMES],
        },
    }


READ = requires(Scope.read)
WRITE = requires(Scope.write)
ADMIN = requires(Scope.admin)
