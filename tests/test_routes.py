"""The app's routes: the order its routers are matched in (the busiest first) must not
decide which operation a request reaches, and the documentation keeps its own order."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import compile_path

from service.app import OPENAPI_TAGS, create_app
from service.settings import Settings

DOCUMENT = create_app(Settings(database_url="sqlite://")).openapi()


def _concrete(path: str) -> str:
    """The path with each parameter filled in as a client would."""
    return re.sub(r"\{[^}]+\}", "0193a1b2-0000-7000-8000-00000000000a", path)


def _shadowed(paths: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, other path) wherever a request to one operation would also match
    another operation of its method."""
    return [
        (method, path, other)
        for path, item in paths.items()
        for method in item
        for other, other_item in paths.items()
        if other != path and method in other_item
        and compile_path(other)[0].match(_concrete(path))
    ]  # fmt: skip


def test_no_operation_can_be_reached_by_another_ones_path() -> None:
    """So a request is routed to the same operation whatever order the routers are tried
    in. A path that could take another's requests is found (the check itself, on a made-up
    pair)."""
    assert _shadowed(DOCUMENT["paths"]) == []
    made_up = {"/v1/rollups/{team}": {"get": {}}, "/v1/rollups/trend": {"get": {}}}
    assert _shadowed(made_up) == [("get", "/v1/rollups/trend", "/v1/rollups/{team}")]


def test_the_documentation_lists_every_tag_in_reading_order() -> None:
    used: set[Any] = {
        tag
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
        for tag in operation.get("tags", ())
    }
    assert [tag["name"] for tag in DOCUMENT["tags"]] == list(OPENAPI_TAGS)
    assert used == set(OPENAPI_TAGS)
