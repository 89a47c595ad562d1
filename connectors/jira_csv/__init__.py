"""Work from a Jira CSV export ("Export CSV (all fields)"), for teams without an API token."""

from connectors.jira_csv.connector import JiraCsvConfig, JiraCsvConnector, NoCredentials

__all__ = ["JiraCsvConfig", "JiraCsvConnector", "NoCredentials"]
