"""The built-in Linear connector: GraphQL over httpx."""

from connectors.linear.config import LinearConfig, LinearCredentials
from connectors.linear.connector import LinearConnector

__all__ = ["LinearConfig", "LinearConnector", "LinearCredentials"]
