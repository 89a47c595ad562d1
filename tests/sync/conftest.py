"""Fixtures for syncing: the example connector installed from its distribution, the app
started with it, and a tracker served over respx."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import respx

from service.app import create_app
from service.db import Database
from service.settings import Settings
from service.worker.arq_queue import ArqQueue
from service.worker.inprocess import InProcessQueue
from tests.tracker import FakeTracker

PLUGIN_SOURCE = Path(__file__).parent.parent / "plugins" / "okr-sync-example"


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example connector distribution, installed as a user would install a plugin."""
    target = tmp_path_factory.mktemp("plugins")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(PLUGIN_SOURCE)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return target


@asynccontextmanager
async def started_app(
    settings: Settings,
    database: Database,
    plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
    queue: InProcessQueue | ArqQueue,
) -> AsyncIterator[Any]:
    """The app with the example plugin on the path, started, on the given queue."""
    monkeypatch.syspath_prepend(str(plugin))
    importlib.invalidate_caches()
    application = create_app(settings, database=database, queue=queue)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(
    settings: Settings,
    database: Database,
    example_plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Any]:
    queue = InProcessQueue(eager=True)
    async with started_app(settings, database, example_plugin, monkeypatch, queue) as application:
        yield application


@pytest.fixture
def tracker() -> Iterator[FakeTracker]:
    fake = FakeTracker()
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="tracker.example").mock(side_effect=fake.handle)
        # Local servers (receivers, fake providers) are reached over real HTTP.
        mock.route(host="127.0.0.1").pass_through()
        yield fake
