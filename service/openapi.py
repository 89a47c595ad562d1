"""The OpenAPI document, with the errors each operation can answer described as they are
sent: RFC 9457 ``application/problem+json`` (FastAPI documents only its own 422, as JSON of
another shape).

Which errors an operation can answer follows from how it is declared, so it is derived here
rather than repeated on every route: a guarded operation may answer 401 and 403, one with a
path parameter 404, a guarded write 409, one with a body 400 (not JSON), and every one 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.errors import PROBLEM_MEDIA_TYPE

PROBLEM_REF = "#/components/schemas/Problem"
WRITES = frozenset({"post", "put", "patch", "delete"})
METHODS = WRITES | {"get", "head", "options"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "`/problems/{slug}`: what went wrong."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Invalid input: each field that was wrong, and why.",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}

# Statuses beyond those the route declarations imply, by path.
EXTRA: dict[str, tuple[int, ...]] = {
    "/hooks/{connection_id}": (401, 413),
}

DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: "No token, or one that is unknown, revoked or expired (or, for webhooks, a bad "
    "signature).",
    403: "The token's scope does not allow this operation.",
    404: "Nothing by that id.",
    409: "The change conflicts with the current state.",
    413: "The body is too large.",
    422: "Invalid input; `errors` says where.",
}


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "An error."),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every operation's error responses as problem+json."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            statuses = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            statuses.add(422)
            if "x-required-scope" in operation:
                statuses |= {401, 403}
            if "{" in path:
                statuses.add(404)
            if method in WRITES and "x-required-scope" in operation:
                statuses.add(409)
            if "requestBody" in operation:
                statuses.add(400)
            statuses.update(EXTRA.get(path, ()))
            for status in statuses:
                responses[str(status)] = _problem(status)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    # FastAPI's own error shapes are never sent.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install(app: FastAPI, security_schemes: dict[str, Any]) -> None:
    """Serve FastAPI's own document with the problems above added, and the security schemes
    that operations name but that no dependency declares, built once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = document_problems(build())
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(security_schemes)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
