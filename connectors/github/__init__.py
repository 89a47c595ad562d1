"""The built-in GitHub Issues connector (github.com and Enterprise Server), over httpx."""

from connectors.github.config import GitHubConfig, GitHubCredentials
from connectors.github.connector import GitHubConnector

__all__ = ["GitHubConfig", "GitHubConnector", "GitHubCredentials"]
