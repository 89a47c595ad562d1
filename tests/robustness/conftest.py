"""A real ``okr-sync serve`` on PostgreSQL, over loopback, with a token of each scope."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.auth.scopes import Scope
from tests.conftest import fresh_postgres_database
from tests.processes import cli_env, free_port, serving

ADMIN_TOKEN = "okr_robustness-admin-0123456789abcdef"


@dataclass(frozen=True)
class LiveServer:
    url: str
    tokens: dict[Scope, str]
    log: Path

    def headers(self, scope: Scope) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # One event loop for the database's life: its engine is bound to the loop it was made on.
    loop = asyncio.new_event_loop()
    database_url, drop = loop.run_until_complete(fresh_postgres_database())
    data_dir = tmp_path_factory.mktemp("live")
    env = cli_env(
        data_dir,
        OKR_SYNC_DATABASE_URL=database_url,
        OKR_SYNC_BOOTSTRAP_TOKEN=ADMIN_TOKEN,
        OKR_SYNC_LOG_LEVEL="WARNING",
    )
    log = data_dir / "server.log"
    try:
        with serving(env, free_port(), log=log) as server:
            tokens = {Scope.admin: ADMIN_TOKEN}
            for scope in (Scope.read, Scope.write):
                made = httpx.post(
                    f"{server.url}/v1/tokens",
                    json={"name": f"fuzz-{scope.value}", "scope": scope.value},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                made.raise_for_status()
                tokens[scope] = made.json()["token"]
            yield LiveServer(server.url, tokens, log)
    finally:
        loop.run_until_complete(drop())
        loop.close()
