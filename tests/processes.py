"""Run the real ``okr-sync`` command in subprocesses, on loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
OKR_SYNC = str(BIN / "okr-sync")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKR_SYNC_")}
    env.update({"OKR_SYNC_DATA_DIR": str(data_dir), "NO_COLOR": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OKR_SYNC, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.stdout = ""
        self.stderr = ""

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()


@contextmanager
def serving(env: dict[str, str], port: int, *, log: Path | None = None) -> Iterator[Server]:
    """``okr-sync serve`` until the block ends; waits (boundedly) for it to be ready.

    After the block the server's remaining output is in ``stdout`` and ``stderr``, or its
    log lines in ``log`` when given (a busy server would fill a pipe no one reads and stall).
    """
    log_file = open(log, "w") if log is not None else None
    proc = subprocess.Popen(
        [OKR_SYNC, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log_file or subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()  # if it still runs: otherwise communicate() would wait for ever
                raise RuntimeError(f"okr-sync serve did not start: {proc.communicate()[1]}")
            time.sleep(0.1)
        server = Server(proc, port)
        yield server
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
        if log_file is not None:
            log_file.close()
    server.stdout, server.stderr = out, err or ""
