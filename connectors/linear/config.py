"""What a Linear connection is configured with."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class LinearConfig(BaseModel):
    api_url: str = Field(default="https://api.linear.app/graphql", pattern=r"^https?://")
    teams: list[str] = Field(
        min_length=1, max_length=200, description="Linear team keys whose work is synced."
    )
    team_map: dict[str, str] = Field(
        default_factory=dict, description="Linear team key to okr-sync team key."
    )


class LinearCredentials(BaseModel):
    """A personal API key (``lin_api_…``) or an OAuth access token."""

    api_key: SecretStr = Field(min_length=1)
