"""Stopping ``okr-sync serve`` with SIGTERM lets the requests it is serving finish."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.processes import cli_env, free_port, serving

TOKEN = "okr_shutdown-test-0123456789abcdef"


def test_sigterm_drains_a_request_in_flight_and_then_exits(tmp_path: Path) -> None:
    env = cli_env(tmp_path, OKR_SYNC_BOOTSTRAP_TOKEN=TOKEN, OKR_SYNC_LOG_FORMAT="text")
    port = free_port()
    sent_first_part = threading.Event()

    def slow_body() -> Iterator[bytes]:
        # A client on a slow link: the request is in flight when the signal arrives.
        yield b'{"key": "drained", '
        sent_first_part.set()
        time.sleep(1.5)
        yield b'"name": "Drained"}'

    with serving(env, port) as server:
        answer: dict[str, httpx.Response] = {}

        def post() -> None:
            answer["response"] = httpx.post(
                f"{server.url}/v1/teams", content=slow_body(), timeout=20,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )  # fmt: skip

        client = threading.Thread(target=post)
        client.start()
        assert sent_first_part.wait(10)
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        client.join(timeout=20)
        assert answer["response"].status_code == 201, answer["response"].text
        # uvicorn re-raises the signal once drained, as a process stopped by it should.
        assert server.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        # Stopped: nothing listens any more.
        try:
            httpx.get(f"{server.url}/healthz", timeout=1)
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("the server still answers after SIGTERM")
