"""What a GitHub Issues connection is configured with."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator

Repo = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]


class GitHubConfig(BaseModel):
    api_url: str = Field(
        default="https://api.github.com",
        pattern=r"^https?://",
        description="GitHub Enterprise Server: https://HOST/api/v3",
    )
    repos: list[Repo] = Field(min_length=1, max_length=500, description="owner/name")
    team_map: dict[str, str] = Field(
        default_factory=dict, description="Repository (owner/name) to okr-sync team key."
    )
    epic_labels: list[str] = Field(
        default_factory=lambda: ["epic"],
        description="Issues with one of these labels (or of issue type Epic) are epics.",
    )

    @field_validator("repos")
    @classmethod
    def _distinct(cls, repos: list[str]) -> list[str]:
        lowered = [r.lower() for r in repos]
        if len(set(lowered)) != len(lowered):
            raise ValueError("each repository once")
        return repos


class GitHubCredentials(BaseModel):
    """A personal access token, fine-grained token or GitHub App installation token."""

    token: SecretStr = Field(min_length=1)
