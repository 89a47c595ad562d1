"""Unknown query parameters are an error, as unknown body fields are, and so is a parameter
given twice.

A filter with a typo (`?tema=payments`) would otherwise be ignored, and a PMO would read the
whole portfolio's numbers as one team's; of `?team=a&team=b`, FastAPI would take the last
value and drop the other without a word (no parameter here takes a list).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.errors import InvalidInput

# Provider webhooks arrive with the provider's own query parameters (Jira Data Center's
# `secret`, and whatever else an administrator put in the URL).
OPEN_PATHS = frozenset({"/hooks/{connection_id}"})


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return names


async def known_query_only(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.path in OPEN_PATHS:
        return
    # Walked each request (a few dependants, microseconds): routes are not hashable.
    declared = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        allowed = ", ".join(sorted(declared)) or "none"
        raise InvalidInput(
            f"unknown query parameter {unknown[0]!r} (this operation takes: {allowed})",
            errors=[{"loc": ["query", name], "msg": "unknown parameter"} for name in unknown],
        )
    given = request.query_params
    if len(given.multi_items()) != len(given):  # a name given more than once
        names = [name for name, _ in given.multi_items()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInput(
            f"query parameter {repeated[0]!r} given more than once; give it once",
            errors=[{"loc": ["query", name], "msg": "given more than once"} for name in repeated],
        )
