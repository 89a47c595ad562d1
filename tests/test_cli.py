from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.processes import cli_env, free_port, run_cli, serving


class TestServe:
    def test_fresh_start_creates_the_database_and_prints_a_working_admin_token_once(
        self, tmp_path: Path
    ) -> None:
        env = cli_env(tmp_path)
        port = free_port()
        with serving(env, port) as server:
            base = server.url
            token = server.readline().strip()
            assert token.startswith("okr_")
            headers = {"Authorization": f"Bearer {token}"}
            created = httpx.post(
                f"{base}/v1/teams", json={"key": "eng", "name": "Eng"}, headers=headers
            )
            assert created.status_code == 201
            assert httpx.get(f"{base}/v1/tokens", headers=headers).status_code == 200
        assert (tmp_path / "okr-sync.db").exists()
        assert (tmp_path / "secret.key").exists()

        port = free_port()
        with serving(env, port) as server:
            team = httpx.get(f"{server.url}/v1/teams/eng", headers=headers)
            assert team.json()["name"] == "Eng"
        assert "okr_" not in server.stdout, "a second start must not mint another admin token"

    def test_bootstrap_token_from_the_environment_works_and_suppresses_the_printed_one(
        self, tmp_path: Path
    ) -> None:
        env = cli_env(tmp_path, OKR_SYNC_BOOTSTRAP_TOKEN="okr_from-automation-0123456789")
        port = free_port()
        with serving(env, port) as server:
            response = httpx.get(
                f"{server.url}/v1/tokens",
                headers={"Authorization": "Bearer okr_from-automation-0123456789"},
            )
            assert response.status_code == 200
        assert server.stdout.strip() == ""


class TestTokenCommands:
    def test_create_list_and_revoke(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path)
        created = run_cli("token", "create", "--scope", "write", "--name", "pmo-bot", env=env)
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        assert token.startswith("okr_")
        assert "\n" not in token

        listed = run_cli("token", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "pmo-bot" in line)
        assert "write" in row
        assert token[:12] in row
        assert token not in listed.stdout
        token_id = row.split("│")[1].strip()

        revoked = run_cli("token", "revoke", token_id, env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert "pmo-bot" not in run_cli("token", "list", env=env).stdout
        assert "pmo-bot" in run_cli("token", "list", "--include-revoked", env=env).stdout

    def test_revoking_an_unknown_token_fails_clearly(self, tmp_path: Path) -> None:
        result = run_cli(
            "token", "revoke", "0192d7c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d", env=cli_env(tmp_path)
        )
        assert result.returncode == 1
        assert "no token" in result.stderr

    def test_bad_scope_is_refused_before_touching_the_database(self, tmp_path: Path) -> None:
        result = run_cli("token", "create", "--scope", "root", "--name", "x", env=cli_env(tmp_path))
        assert result.returncode == 2
        assert not (tmp_path / "okr-sync.db").exists()

    def test_secret_key_prints_a_usable_fernet_key(self, tmp_path: Path) -> None:
        result = run_cli("secret-key", env=cli_env(tmp_path))
        assert result.returncode == 0
        Fernet(result.stdout.strip().encode())

    def test_serve_refuses_a_malformed_secret_key(self, tmp_path: Path) -> None:
        result = run_cli("serve", env=cli_env(tmp_path, OKR_SYNC_SECRET_KEY="not-a-fernet-key"))
        assert result.returncode != 0
        assert "Fernet keys" in result.stderr

    def test_migrate_creates_the_schema(self, tmp_path: Path) -> None:
        result = run_cli("migrate", env=cli_env(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stderr
        assert (tmp_path / "okr-sync.db").stat().st_size > 0


class TestDemo:
    def test_loads_a_portfolio_once_and_prints_its_roll_up(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path)
        first = run_cli("demo", env=env)
        assert first.returncode == 0, first.stderr
        assert "386 Jira issues imported" in first.stdout
        for text in ("strategic", "payments", "platform", "Checkout conversion"):
            assert text in first.stdout
        again = run_cli("demo", env=env)
        assert again.returncode == 0, again.stderr
        assert "loaded already" in again.stdout
        # Serve the same data directory: the numbers are there to explore.
        port = free_port()
        with serving(env, port) as server:
            token = server.readline().strip()
            headers = {"Authorization": f"Bearer {token}"}
            rollup = httpx.get(
                f"{server.url}/v1/rollups", params={"period": "2026-Q4"}, headers=headers
            ).json()
            assert rollup["total"] > 100
            assert rollup["categories"]["strategic"]["items"] > 0
            assert rollup["categories"]["improvement"]["items"] > 0
            epic = httpx.get(f"{server.url}/v1/work-items/PAY-79", headers=headers).json()
            assert epic["why"]["source"] == "links"


class TestRollupsCheck:
    def test_finds_cells_edited_by_hand_and_repairs_them(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path)
        assert run_cli("demo", env=env).returncode == 0
        clean = run_cli("rollups", "check", env=env)
        assert clean.returncode == 0, clean.stderr
        assert "match the leaves" in clean.stderr
        with sqlite3.connect(tmp_path / "okr-sync.db") as db:
            db.execute(
                "UPDATE rollup_cells SET leaves = leaves + 1"
                " WHERE id = (SELECT min(id) FROM rollup_cells)"
            )
        found = run_cli("rollups", "check", env=env)
        assert found.returncode == 1
        assert "differ from the leaves at 1 keys" in found.stderr
        assert "stored (" in found.stderr
        repaired = run_cli("rollups", "check", "--repair", env=env)
        assert repaired.returncode == 0, repaired.stderr
        assert "Rebuilt" in repaired.stderr
        assert run_cli("rollups", "check", env=env).returncode == 0


def test_help_does_not_import_the_service() -> None:
    # `okr-sync --help` took two seconds when the CLI module imported the whole service;
    # each command now imports what it runs.
    probe = (
        "import sys, service.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'service.app', 'arq', 'uvicorn')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    shown = subprocess.run(
        [sys.executable, "-c", "from service.cli import app; app()", "--help"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert {"serve", "sync", "worker", "token"} <= set(shown.stdout.split())
