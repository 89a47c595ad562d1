from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from service.db import async_url
from service.settings import Settings


class TestSettings:
    def test_environment_variables_with_prefix_are_read(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("OKR_SYNC_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("OKR_SYNC_UNLINKED_GRACE_HOURS", "48")
        monkeypatch.setenv("OKR_SYNC_DEFAULT_CATEGORY", "improvement")
        settings = Settings()
        assert settings.data_dir == tmp_path
        assert settings.unlinked_grace_hours == 48
        assert settings.default_category == "improvement"
        assert settings.effective_database_url == f"sqlite:///{tmp_path / 'okr-sync.db'}"

    def test_secret_key_is_generated_once_kept_private_and_reused(self, tmp_path: Path) -> None:
        first = Settings(data_dir=tmp_path).secret_keys()
        second = Settings(data_dir=tmp_path).secret_keys()
        assert first == second
        assert len(first) == 1
        Fernet(first[0].encode())  # a valid Fernet key
        mode = (tmp_path / "secret.key").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600

    def test_several_keys_for_rotation_newest_first(self, tmp_path: Path) -> None:
        new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        settings = Settings(data_dir=tmp_path, secret_key=f"{new}, {old}")
        assert settings.secret_keys() == [new, old]
        assert not (tmp_path / "secret.key").exists()

    @pytest.mark.parametrize("field", ["secret_key", "bootstrap_token"])
    def test_placeholder_secrets_are_refused_outside_development(
        self, tmp_path: Path, field: str
    ) -> None:
        with pytest.raises(ValidationError, match="placeholder"):
            Settings(data_dir=tmp_path, environment="production", **{field: "changeme"})
        Settings(data_dir=tmp_path, environment="development", **{field: "changeme"})

    def test_strategic_cannot_be_the_default_category(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="only linked work is strategic"):
            Settings(data_dir=tmp_path, default_category="strategic")

    @pytest.mark.parametrize(
        ("given", "used"),
        [
            ("sqlite:////var/lib/okr.db", "sqlite+aiosqlite:////var/lib/okr.db"),
            ("postgresql://u:p@db/okr", "postgresql+asyncpg://u:p@db/okr"),
            ("postgres://u@db/okr", "postgresql+asyncpg://u@db/okr"),
            ("postgresql+psycopg://u@db/okr", "postgresql+asyncpg://u@db/okr"),
        ],
    )
    def test_database_urls_get_the_bundled_async_driver(self, given: str, used: str) -> None:
        assert async_url(given) == used

    def test_other_databases_are_refused_clearly(self) -> None:
        with pytest.raises(ValueError, match="unsupported database 'mysql'"):
            async_url("mysql://u@db/okr")
