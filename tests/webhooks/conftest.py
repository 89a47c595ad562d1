"""Webhook tests: the app with the example connector, a tracker on respx, and receivers on
loopback over real HTTP (so private destinations are allowed, as a test needs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.fakes.receiver import Receiver
from tests.fakes.serving import serving
from tests.sync.conftest import app, example_plugin, tracker
from tests.webhooks.helpers import SECRETS, verifies

__all__ = ["app", "example_plugin", "tracker"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite:///unused-in-api-tests.db",
        allow_private_webhook_urls=True,
        unlinked_grace_hours=0,
    )


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """A receiver on loopback; when the test ends, every delivery it got must verify with the
    standardwebhooks library under a secret the test was given."""
    fake = Receiver()
    SECRETS.clear()
    with serving(fake.app(), "receiver") as port:
        yield fake, f"http://127.0.0.1:{port}/hooks"
    unverified = [r.headers.get("webhook-id") for r in fake.received if not verifies(r)]
    assert unverified == [], "deliveries no secret verifies"
