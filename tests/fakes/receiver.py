"""A webhook receiver over real HTTP: records what arrives and answers as planned."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``answers`` are taken one per request, then ``default`` answers; each is a Response or
    a callable making one (which may block, as a hung receiver does)."""

    default: Callable[[], Response] = lambda: Response("ok")
    answers: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, *responses: Any) -> None:
        with self.lock:
            self.answers.extend(responses)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.received]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(dict(request.headers), body))
            planned = self.answers.pop(0) if self.answers else self.default
        # A Response is callable too (an ASGI app): only other callables make one.
        made = planned if isinstance(planned, Response) else planned()
        if asyncio.iscoroutine(made):
            made = await made
        assert isinstance(made, Response)
        return made

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])


def main() -> None:
    """A receiver in a process of its own, writing each delivery's webhook-id and body on a
    line of ``--log``: ``python -m tests.fakes.receiver --port P --log FILE``."""
    import argparse
    import json
    from pathlib import Path

    from tests.fakes.serving import run_forever

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    out = args.log.open("a", encoding="utf-8")

    async def record(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        out.write(json.dumps({"id": headers.get("webhook-id"), "body": body.decode()}) + "\n")
        out.flush()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    run_forever(record, args.port)


if __name__ == "__main__":
    main()
