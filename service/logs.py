"""Structured logs: one JSON object a line, each carrying the id of the request it serves.

The id comes from the caller's ``X-Request-ID`` (or is made up), is answered in the same
header, and travels with the jobs the request starts: in-process jobs inherit it with their
context; arq jobs carry it as an argument. So one grep follows a request into its sync.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import IO, Literal

from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("okr_sync_request_id", default=None)

HEADER = "x-request-id"
# What a caller may choose: enough for UUIDs and trace ids, nothing that breaks a log line.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

LogFormat = Literal["json", "text"]


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def handler(log_format: LogFormat = "json", stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``log_format`` lines, with the request id, to ``stream`` (stderr)."""
    made = logging.StreamHandler(stream)
    if log_format == "json":
        made.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        made.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s] %(message)s"))
    made.addFilter(RequestIdFilter())
    return made


def configure(level: str, log_format: LogFormat = "json") -> None:
    """Route every logger through one handler on standard error."""
    root = logging.getLogger()
    root.handlers[:] = [handler(log_format)]
    root.setLevel(level)


def chosen_or_new(value: str | None) -> str:
    return value if value and _ACCEPTED.match(value) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for everything the request does, and answers it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode())
        rid = chosen_or_new(given.decode("latin-1") if given else None)
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
