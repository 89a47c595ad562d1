"""The file connector: a Jira CSV export on the server's disk, re-read on every sync.

A sync reads the whole file: a full sync marks deleted what the file no longer holds, and an
incremental one skips the file when its content is what the last sync read (the cursor is
the file's SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Connector
from connectors.errors import Permanent
from connectors.jira_csv.parse import Table, items
from connectors.models import Page


class JiraCsvConfig(BaseModel):
    path: str = Field(min_length=1, description="The export's path on the okr-sync server.")
    timezone: str = Field(
        default="UTC", description="The exporting user's time zone: Jira writes local times."
    )
    team_map: dict[str, str] = Field(
        default_factory=dict, description="Project key to okr-sync team key."
    )
    story_points_field: str | None = Field(
        default=None,
        description="The story points field's name; 'Story Points' or 'Story point estimate' "
        "when absent.",
    )
    site_url: str | None = Field(
        default=None, pattern=r"^https?://", description="For links: https://acme.atlassian.net"
    )
    page_size: int = Field(default=500, ge=1, le=5000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class NoCredentials(BaseModel):
    """A file needs none."""

    model_config = ConfigDict(extra="forbid")


class JiraCsvConnector(Connector[JiraCsvConfig, NoCredentials]):
    provider = "jira_csv"
    config_model = JiraCsvConfig
    credentials_model = NoCredentials

    async def _read(self) -> str:
        self.stats.api_calls += 1
        try:
            return await asyncio.to_thread(Path(self.config.path).read_text, encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise Permanent(f"cannot read {self.config.path}: {exc}") from exc

    async def check(self) -> None:
        Table(await self._read())

    async def fetch(self, cursor: str | None) -> AsyncGenerator[Page, None]:
        text = await self._read()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if cursor == digest:
            return
        found = list(
            items(
                text, zone=ZoneInfo(self.config.timezone), team_map=self.config.team_map,
                story_points=self.config.story_points_field, site_url=self.config.site_url,
            )
        )  # fmt: skip
        size = self.config.page_size
        for start in range(0, len(found), size):
            last = start + size >= len(found)
            yield Page(items=tuple(found[start : start + size]), cursor=digest if last else None)
        if not found:
            yield Page(items=(), cursor=digest)
