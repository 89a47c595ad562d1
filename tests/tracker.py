"""A small JSON work tracker, served to the example connector through respx.

It pages like a real tracker (ordered by update time, then id, strictly after a cursor) and
can be told to fail a given call, so that syncs can be run through faults.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

BASE_URL = "https://tracker.example"
TOKEN = "tracker-token-0123456789"
EPOCH = datetime(2026, 10, 1, tzinfo=UTC)

Fault = httpx.Response | BaseException | Callable[[], Any]


class FakeTracker:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.faults: dict[int, Fault] = {}
        self._clock = 0

    def _tick(self) -> str:
        self._clock += 1
        return (EPOCH + timedelta(seconds=self._clock)).isoformat()

    def add(self, item_id: str, *, type: str = "story", **fields: Any) -> dict[str, Any]:
        now = self._tick()
        item = {
            "id": item_id,
            "key": f"PAY-{item_id}",
            "title": f"Item {item_id}",
            "type": type,
            "state": "open",
            "project": "PAY",
            "labels": [],
            "created": now,
            "updated": now,
            "url": f"{BASE_URL}/browse/PAY-{item_id}",
        } | fields
        self.items[item_id] = item
        return item

    def touch(self, item_id: str, **changes: Any) -> None:
        self.items[item_id].update(changes, updated=self._tick())

    def delete(self, item_id: str) -> None:
        del self.items[item_id]

    def fail(self, call: int, fault: Fault) -> None:
        """Answer the ``call``-th request (1-based, counted from now) with ``fault``."""
        self.faults[self.calls + call] = fault

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        fault = self.faults.pop(self.calls, None)
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, httpx.Response):
            return fault
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "bad token"})
        if request.url.path == "/api/me":
            return httpx.Response(200, json={"name": "okr-sync"})
        return self._page(request)

    def _page(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        after = request.url.params.get("after")
        ordered = sorted(self.items.values(), key=lambda i: (i["updated"], i["id"]))
        if after:
            updated, _, item_id = after.partition("|")
            ordered = [i for i in ordered if (i["updated"], i["id"]) > (updated, item_id)]
        page = ordered[:limit]
        cursor = f"{page[-1]['updated']}|{page[-1]['id']}" if page else None
        return httpx.Response(
            200, json={"items": page, "cursor": cursor, "has_more": len(ordered) > limit}
        )


class TrackerServer:
    """The same tracker over real HTTP on loopback, for clients in other processes."""

    def __init__(self, tracker: FakeTracker) -> None:
        handle = tracker.handle

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = httpx.Request(
                    "GET", f"http://tracker{self.path}", headers=dict(self.headers)
                )
                response = handle(request)
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TrackerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
