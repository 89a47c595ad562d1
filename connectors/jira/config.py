"""What a Jira connection is configured with."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, SecretStr, model_validator


class JiraConfig(BaseModel):
    url: str = Field(pattern=r"^https?://", description="The site, e.g. https://acme.atlassian.net")
    jql: str = Field(default="", max_length=2000, description="Which issues; empty: all visible.")
    team_map: dict[str, str] = Field(
        default_factory=dict, description="Project key to okr-sync team key."
    )
    story_points_field: str | None = Field(
        default=None, description="Field id; discovered (board, then /field) when absent."
    )
    epic_link_field: str | None = Field(
        default=None, description="Data Center's Epic Link field id; discovered when absent."
    )
    parent_link_field: str | None = Field(
        default=None, description="Data Center's Parent Link field id; discovered when absent."
    )
    board_id: int | None = Field(
        default=None, ge=1, description="A board whose estimation field gives the story points."
    )


class JiraCredentials(BaseModel):
    """Jira Cloud: ``email`` and ``api_token``. Data Center: a personal access ``token``."""

    email: str | None = None
    api_token: SecretStr | None = None
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> Self:
        cloud = self.email is not None and self.api_token is not None
        if cloud == (self.token is not None):
            raise ValueError("give email and api_token (Cloud), or token (Data Center)")
        return self
