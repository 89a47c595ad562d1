"""Portfolio tests sync their work items through the example connector, as users would."""

from tests.sync.conftest import app, example_plugin, tracker

__all__ = ["app", "example_plugin", "tracker"]
