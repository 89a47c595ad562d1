"""What open_services does to the process it runs in."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service.db import Database
from service.services import GC_THRESHOLDS, open_services
from service.settings import Settings
from service.worker.inprocess import InProcessQueue


@pytest.fixture
def default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("default_thresholds")
async def test_services_collect_young_objects_less_often_and_restore_on_close(
    settings: Settings, database: Database
) -> None:
    async with open_services(settings, queue=InProcessQueue(), database=database):
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
