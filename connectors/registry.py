"""Discovery of connector plugins through the ``okr_sync.connectors`` entry-point group.

A broken or duplicate plugin is an error, never skipped with a log line: a connector that
silently vanishes would stop syncing a team's work without anyone noticing.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

from connectors.base import Connector

GROUP = "okr_sync.connectors"

ConnectorClass = type[Connector[Any, Any]]


class PluginError(Exception):
    """A connector plugin could not be loaded, or clashes with another."""


def _load(entry_point: EntryPoint) -> ConnectorClass:
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise PluginError(
            f"connector plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise PluginError(f"connector plugin {entry_point.name!r} is not a Connector subclass")
    if getattr(loaded, "provider", None) != entry_point.name:
        raise PluginError(
            f"connector plugin {entry_point.name!r} declares provider "
            f"{getattr(loaded, 'provider', None)!r}; the two must match"
        )
    return loaded


def discover() -> Mapping[str, ConnectorClass]:
    """Every installed connector by provider name."""
    found: dict[str, ConnectorClass] = {}
    origins: dict[str, str] = {}
    for entry_point in entry_points(group=GROUP):
        if entry_point.name in found:
            if origins[entry_point.name] == entry_point.value:
                continue  # the same distribution seen twice on sys.path
            raise PluginError(
                f"two connector plugins claim provider {entry_point.name!r}: "
                f"{origins[entry_point.name]} and {entry_point.value}"
            )
        found[entry_point.name] = _load(entry_point)
        origins[entry_point.name] = entry_point.value
    return MappingProxyType(found)
