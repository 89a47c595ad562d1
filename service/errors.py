"""Errors the API answers with, rendered as RFC 9457 ``application/problem+json``.

Every expected failure is an ``ApiError`` carrying its HTTP status and a stable problem type;
one handler renders them all. The tree::

    ApiError
    ├── InvalidInput          422 invalid-input (also request validation, with ``errors``)
    ├── Unauthenticated       401 unauthenticated
    ├── Forbidden             403 forbidden
    ├── NotFound              404 not-found
    └── Conflict              409 conflict

Anything else that escapes a handler is a bug: it is logged and answered as a 500
``internal-error`` problem that reveals nothing of the exception.

A problem's ``type`` is a relative URI, ``/problems/<slug>``, that the service itself serves
with a description, so a client can both compare it and read it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# slug -> (title, description). The slugs are part of the API contract: never rename one.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "invalid-input": (
        "Invalid input",
        "The request is malformed or breaks a rule of the domain; `errors` says where.",
    ),
    "unauthenticated": (
        "Authentication required",
        "Send `Authorization: Bearer <token>` with a token that exists and is not revoked.",
    ),
    "forbidden": ("Forbidden", "The token's scope does not allow this operation."),
    "invalid-signature": (
        "Invalid signature",
        "A provider webhook whose signature is missing, wrong or too old for the connection's "
        "webhook secret.",
    ),
    "not-found": ("Not found", "No resource with that id or key exists."),
    "conflict": (
        "Conflict",
        "The request conflicts with the current state: a duplicate key, or a resource that "
        "other resources still depend on.",
    ),
    "method-not-allowed": ("Method not allowed", "The resource does not support this method."),
    "payload-too-large": ("Payload too large", "The request body exceeds the accepted size."),
    "unsupported-media-type": (
        "Unsupported media type",
        "The request body is not in a media type this operation accepts.",
    ),
    "not-acceptable": ("Not acceptable", "None of the media types in `Accept` can be served."),
    "http-error": ("HTTP error", "The request failed; see `status` and `detail`."),
    "internal-error": (
        "Internal error",
        "An unexpected error; it has been logged. Retrying may help; reporting it will.",
    ),
}

_STATUS_TYPES = {
    400: "invalid-input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
}


def problem_type_uri(slug: str) -> str:
    return f"/problems/{slug}"


class ApiError(Exception):
    """An expected failure with an HTTP status and a stable problem type."""

    status: int = 500
    slug: str = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class InvalidInput(ApiError):
    status = 422
    slug = "invalid-input"

    @classmethod
    def at(cls, field: str, message: str) -> InvalidInput:
        """An invalid-input error about one field of the request body."""
        return cls(message, errors=[{"loc": ["body", field], "msg": message}])


class Unauthenticated(ApiError):
    status = 401
    slug = "unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidSignature(ApiError):
    status = 401
    slug = "invalid-signature"


class PayloadTooLarge(ApiError):
    status = 413
    slug = "payload-too-large"


class Forbidden(ApiError):
    status = 403
    slug = "forbidden"


class NotFound(ApiError):
    status = 404
    slug = "not-found"


class Conflict(ApiError):
    status = 409
    slug = "conflict"


def problem_response(
    *,
    status: int,
    slug: str,
    detail: str | None,
    instance: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title = PROBLEM_TYPES[slug][0]
    body: dict[str, Any] = {
        "type": problem_type_uri(slug),
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(
        status=exc.status,
        slug=exc.slug,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
    )


def _echoable(value: Any) -> bool:
    """Small JSON-safe scalars only: a whole body, or a NaN, must not come back in an error."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= 200
    return value is None or isinstance(value, bool | int)


def _clean_validation_error(error: Any) -> dict[str, Any]:
    # pydantic puts the exception object into `ctx`; keep only what serialises meaningfully.
    out = {
        "loc": list(error.get("loc", ())),
        "msg": error.get("msg", ""),
        "type": error.get("type"),
    }
    if error.get("type") != "missing" and _echoable(error.get("input")):
        out["input"] = error.get("input")
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean_validation_error(e) for e in exc.errors()]
    first = errors[0] if errors else None
    detail = "The request is invalid."
    if first is not None:
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
    return problem_response(
        status=422, slug="invalid-input", detail=detail, instance=request.url.path, errors=errors
    )


def _allowed(request: Request) -> str:
    """Every method the path takes: Starlette's 405 names only those of the one route it
    matched, while one path is often several routes (GET and POST on a collection)."""
    routes = request.app.router.routes
    methods = {
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = _STATUS_TYPES.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    return problem_response(
        status=exc.status_code,
        slug=slug,
        detail=str(exc.detail),
        instance=request.url.path,
        headers=headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("http.unhandled_error", exc_info=exc, extra={"path": request.url.path})
    return problem_response(
        status=500, slug="internal-error", detail=None, instance=request.url.path
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
