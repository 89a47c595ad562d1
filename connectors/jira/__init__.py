"""The built-in Jira connector (Cloud and Data Center), on the ``jira`` library."""

from connectors.jira.config import JiraConfig, JiraCredentials
from connectors.jira.connector import JiraConnector

__all__ = ["JiraConfig", "JiraConnector", "JiraCredentials"]
