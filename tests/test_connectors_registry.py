"""Plugin discovery: the real importlib.metadata machinery, over distributions on sys.path."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import connectors
from connectors import Connector, PluginError, discover


def fake_distribution(root: Path, name: str, entry_points: dict[str, str], code: str = "") -> None:
    """A minimal installed distribution: a module and a dist-info with entry points."""
    module = name.replace("-", "_")
    if code:
        (root / f"{module}.py").write_text(code)
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[okr_sync.connectors]\n{lines}")


PLUGIN = """
from connectors import Connector
from pydantic import BaseModel

class Config(BaseModel):
    pass

class Thing(Connector[Config, Config]):
    provider = "{provider}"
    config_model = Config
    credentials_model = Config

    async def check(self):
        return None

    async def fetch(self, cursor):
        return
        yield
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


class TestDiscover:
    def test_an_installed_plugin_is_found_under_its_provider_name(self, site: Path) -> None:
        fake_distribution(site, "acme-tracker", {"acme": "acme_tracker:Thing"},
                          PLUGIN.format(provider="acme"))  # fmt: skip
        found = discover()
        assert issubclass(found["acme"], Connector)
        assert found["acme"].provider == "acme"

    def test_a_plugin_that_fails_to_import_stops_discovery_loudly(self, site: Path) -> None:
        fake_distribution(site, "broken-tracker", {"broken": "broken_tracker:Thing"},
                          "raise RuntimeError('missing dependency')")  # fmt: skip
        with pytest.raises(PluginError, match="'broken'.*failed to load.*missing dependency"):
            discover()

    def test_two_plugins_claiming_one_provider_are_refused(self, site: Path) -> None:
        fake_distribution(site, "one-tracker", {"same": "one_tracker:Thing"},
                          PLUGIN.format(provider="same"))  # fmt: skip
        fake_distribution(site, "two-tracker", {"same": "two_tracker:Thing"},
                          PLUGIN.format(provider="same"))  # fmt: skip
        with pytest.raises(PluginError, match="two connector plugins claim provider 'same'"):
            discover()

    def test_entry_point_name_must_match_the_declared_provider(self, site: Path) -> None:
        fake_distribution(site, "liar-tracker", {"jira2": "liar_tracker:Thing"},
                          PLUGIN.format(provider="other"))  # fmt: skip
        with pytest.raises(PluginError, match="declares provider 'other'"):
            discover()

    def test_an_entry_point_that_is_not_a_connector_is_refused(self, site: Path) -> None:
        fake_distribution(site, "odd-tracker", {"odd": "odd_tracker:thing"}, "thing = 42\n")
        with pytest.raises(PluginError, match="not a Connector subclass"):
            discover()


class TestPublicApi:
    def test_all_is_sorted_and_names_only_what_exists(self) -> None:
        assert connectors.__all__ == sorted(connectors.__all__)
        for name in connectors.__all__:
            assert hasattr(connectors, name), name

    def test_the_package_ships_its_type_information(self) -> None:
        assert (Path(connectors.__file__).parent / "py.typed").exists()
