"""Text with NUL characters is refused at the door.

PostgreSQL cannot store U+0000 in text or jsonb, so such a value would fail deep in a write
with a 500; SQLite would keep it. Either way it is never meant: a request naming one gets a
422 before anything runs. Query strings and paths are checked here, request bodies by
``RequestModel``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import problem_response

_NUL = (b"%00", b"\x00")


def has_nul(raw: bytes) -> bool:
    return any(marker in raw for marker in _NUL)


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for where, raw in (
                ("path", scope.get("raw_path") or scope["path"].encode()),
                ("query", scope.get("query_string", b"")),
            ):
                if has_nul(raw):
                    message = f"the {where} contains a NUL character"
                    response = problem_response(
                        status=422, slug="invalid-input", detail=message,
                        instance=scope["path"].replace("\x00", ""),
                        errors=[{"loc": [where], "msg": message}],
                    )  # fmt: skip
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
