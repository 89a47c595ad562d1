"""Settings from the environment (prefix ``OKR_SYNC_``), with embedded defaults.

With nothing configured okr-sync keeps a SQLite file and a generated secret key in its data
directory and runs its jobs in-process, so one command starts a working system.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret.key"
SQLITE_FILE = "okr-sync.db"
# Values that show up in copied examples; accepting them outside development would ship a
# guessable key to production.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "please-change-me"})


class Environment(StrEnum):
    development = "development"
    production = "production"


class Category(StrEnum):
    strategic = "strategic"
    improvement = "improvement"
    heartbeat = "heartbeat"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OKR_SYNC_", extra="ignore")

    environment: Environment = Environment.development
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("okr-sync", appauthor=False)))
    database_url: str | None = None
    # PostgreSQL connections each process keeps, and how many more it may open for a burst
    # (closed again as they come back). None more by default: a new connection is a new
    # backend that plans its first statements cold, and under a burst on a small server
    # they turned a queue into a collapse (bench/RESULTS.md, 2026-12-07); requests wait
    # for a pooled connection instead.
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    database_max_overflow: int = Field(default=0, ge=0, le=1000)
    redis_url: str | None = None
    queue_name: str = Field(default="okr-sync:queue", min_length=1, max_length=200)
    secret_key: SecretStr | None = None
    bootstrap_token: SecretStr | None = None
    allow_private_webhook_urls: bool = False
    unlinked_grace_hours: float = Field(default=24.0, ge=0)
    default_category: Category = Category.heartbeat
    # Insights: a KR with no check-in for this many days is stale; a team with more
    # objectives than this in one period has too many to focus on.
    stale_check_in_days: int = Field(default=14, ge=1, le=365)
    max_objectives_per_team: int = Field(default=5, ge=1, le=100)
    log_level: str = "INFO"
    # How long a sync run stays its worker's without a sign of life: a worker that dies is
    # replaced after this long (its checkpoint makes the replacement resume, not restart).
    sync_lease_seconds: int = Field(default=120, ge=5, le=3600)
    # A stopped worker lets its jobs finish this long, then hands back what still runs.
    worker_shutdown_wait_seconds: int = Field(default=45, ge=0, le=3600)
    # Delivered outbound messages (with their attempt log) and applied provider webhooks are
    # deleted after this many days; pending ones never are.
    history_retention_days: int = Field(default=30, ge=1, le=3650)
    # OpenTelemetry spans over OTLP (needs the otel extra; OTEL_* variables configure it).
    tracing: bool = False
    # `okr-sync worker` serves its Prometheus metrics on this port (the API has /metrics).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # json: one object a line for log collectors; text: for reading in a terminal.
    log_format: Literal["json", "text"] = "json"

    @field_validator("default_category")
    @classmethod
    def _not_strategic(cls, value: Category) -> Category:
        if value is Category.strategic:
            raise ValueError("only linked work is strategic; choose heartbeat or improvement")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.environment is Environment.development:
            return self
        for name in ("secret_key", "bootstrap_token"):
            value = getattr(self, name)
            if (
                value is not None
                and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            ):
                raise ValueError(f"OKR_SYNC_{name.upper()} holds a placeholder value")
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / SQLITE_FILE}"

    def secret_keys(self) -> list[str]:
        """Fernet keys, newest first; generated and kept in the data directory when unset.

        A comma-separated ``OKR_SYNC_SECRET_KEY`` lists several keys so that credentials
        encrypted under an older key stay readable during a rotation.
        """
        if self.secret_key is not None:
            keys = [k.strip() for k in self.secret_key.get_secret_value().split(",") if k.strip()]
            for key in keys:
                try:
                    Fernet(key)
                except ValueError as exc:
                    raise ValueError(
                        "OKR_SYNC_SECRET_KEY must hold Fernet keys (32 url-safe base64 bytes); "
                        "make one with `okr-sync secret-key`"
                    ) from exc
            return keys
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(Fernet.generate_key().decode())
        return [path.read_text().strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
