"""Serving a local provider over real HTTP, in a thread for tests or a process for benchmarks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import uvicorn


class FaultySite(Protocol):
    """A local provider's state as far as counting calls and injecting faults go."""

    lock: threading.Lock
    total_calls: int
    calls: Counter[str]
    faults: dict[int, Any]


def take_fault(site: FaultySite, name: str) -> Any:
    """Count this request under ``name`` and return the fault planned for it. A planned
    callable is something happening on the site just before the request: it runs, and the
    request is then answered normally."""
    with site.lock:
        site.total_calls += 1
        site.calls[name] += 1
        fault = site.faults.pop(site.total_calls, None)
    if callable(fault):
        fault()
        return None
    return fault


async def stalled(fault: Any) -> Any:
    """A ``("stall", seconds)`` fault holds the answer back that long (past a client's read
    timeout), and the request is then answered normally; any other fault is passed on."""
    if isinstance(fault, tuple) and fault[:1] == ("stall",):
        await asyncio.sleep(fault[1])
        return None
    return fault


@contextmanager
def serving(app: Any, name: str) -> Iterator[int]:
    """Serve ``app`` on a free loopback port until the block ends; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local {name} did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_forever(app: Any, port: int) -> None:
    """Serve ``app`` in this process until it is killed (the benchmarks' servers)."""
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
