from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from service.app import create_app
from service.auth import service as auth
from service.auth.scopes import Scope
from service.auth.tokens import hash_token
from service.db import Database
from service.models import ApiToken
from service.settings import Settings
from service.worker.inprocess import InProcessQueue
from tests.conftest import assert_problem, with_token

# The access policy, written independently of the code: admins alone manage tokens,
# connections, webhook endpoints and their messages; otherwise reading needs `read`, changing
# `write`.
ADMIN_PREFIXES = ("/v1/tokens", "/v1/connections", "/v1/webhook-endpoints", "/v1/webhook-messages")
# /hooks: providers authenticate by the signature on the body, not a token.
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/problems/{slug}", "/hooks/{connection_id}"}


def expected_scope(method: str, path: str) -> Scope:
    if path.startswith(ADMIN_PREFIXES):
        return Scope.admin
    return Scope.read if method == "get" else Scope.write


def operations(app: Any) -> list[tuple[str, str, dict[str, Any]]]:
    schema = app.openapi()
    return [
        (method, path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def concrete(path: str) -> str:
    # Any well-formed id: the guard must answer before the resource is looked up.
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def call(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    kwargs: dict[str, Any] = {"json": {}} if method in {"post", "put", "patch"} else {}
    return await client.request(method.upper(), concrete(path), **kwargs)


class TestEveryOperation:
    def test_every_v1_operation_declares_the_scope_the_policy_gives_it(self, app: Any) -> None:
        ops = operations(app)
        assert len(ops) > 20
        for method, path, op in ops:
            if path in PUBLIC_PATHS:
                assert "x-required-scope" not in op
                continue
            assert path.startswith("/v1/"), f"{method} {path} is neither public nor under /v1"
            assert op.get("x-required-scope") == expected_scope(method, path).value, (method, path)
            assert op.get("security"), f"{method} {path} shows no security in the OpenAPI"

    async def test_no_token_gets_401_problem_with_bearer_challenge(
        self, app: Any, anonymous: httpx.AsyncClient
    ) -> None:
        for method, path, _ in operations(app):
            if path in PUBLIC_PATHS:
                continue
            response = await call(anonymous, method, path)
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("scope", list(Scope))
    async def test_each_scope_is_let_through_exactly_where_the_policy_allows(
        self, app: Any, anonymous: httpx.AsyncClient, tokens: dict[Scope, str], scope: Scope
    ) -> None:
        async with with_token(anonymous, tokens[scope]) as client:
            for method, path, _ in operations(app):
                if path in PUBLIC_PATHS:
                    continue
                response = await call(client, method, path)
                if scope.allows(expected_scope(method, path)):
                    assert response.status_code not in {401, 403}, (method, path, response.text)
                else:
                    assert_problem(response, 403, "forbidden")

    async def test_public_operations_need_no_token(self, anonymous: httpx.AsyncClient) -> None:
        for path in ("/healthz", "/readyz", "/metrics", "/problems/not-found", "/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200, path


class TestBearerToken:
    @pytest.mark.parametrize(
        "header", ["Bearer okr_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer", "okr_abc"]
    )
    async def test_unknown_or_malformed_credentials_are_401(
        self, anonymous: httpx.AsyncClient, header: str
    ) -> None:
        response = await anonymous.get("/v1/teams", headers={"Authorization": header})
        assert_problem(response, 401, "unauthenticated")

    async def test_revoked_token_stops_working_at_once(
        self, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
    ) -> None:
        made = (await admin.post("/v1/tokens", json={"name": "ci", "scope": "read"})).json()
        async with with_token(anonymous, made["token"]) as ci:
            assert (await ci.get("/v1/teams")).status_code == 200
            assert (await admin.delete(f"/v1/tokens/{made['id']}")).status_code == 204
            assert_problem(await ci.get("/v1/teams"), 401, "unauthenticated")

    async def test_expired_token_is_401(
        self, database: Database, anonymous: httpx.AsyncClient
    ) -> None:
        async with database.transaction() as session:
            row, plain = await auth.create(
                session=session,
                name="short",
                scope=Scope.admin,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.add(row)
        async with with_token(anonymous, plain) as client:
            body = assert_problem(await client.get("/v1/teams"), 401, "unauthenticated")
            assert "expired" in body["detail"]

    async def test_use_records_last_used_at(
        self, database: Database, reader: httpx.AsyncClient, tokens: dict[Scope, str]
    ) -> None:
        before = datetime.now(UTC)
        assert (await reader.get("/v1/teams")).status_code == 200
        async with database.sessionmaker() as session:
            stmt = select(ApiToken).where(ApiToken.token_hash == hash_token(tokens[Scope.read]))
            row = (await session.exec(stmt)).one()
        assert row.last_used_at is not None
        assert row.last_used_at >= before


@pytest.mark.parametrize(
    "engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
class TestLastUseOnPostgres:
    """With committed tokens and the app's own sessions, not the tests' shared transaction."""

    @pytest.fixture
    async def database(self, engine: AsyncEngine) -> AsyncIterator[Database]:
        made = Database.from_url(engine.url.render_as_string(hide_password=False))
        yield made
        async with made.transaction() as session:
            await session.exec(sa.delete(ApiToken).where(col(ApiToken.name) == "last use"))
        await made.dispose()

    async def _last_used(self, database: Database, token_id: uuid.UUID) -> datetime | None:
        async with database.reading() as session:
            row = await session.get(ApiToken, token_id)
            assert row is not None
            return row.last_used_at

    async def test_a_get_records_the_last_use_though_it_reads_outside_a_transaction(
        self, database: Database, settings: Settings
    ) -> None:
        async with database.transaction() as session:
            row, plain = await auth.create(session=session, name="last use", scope=Scope.read)
        app = create_app(settings, database=database, queue=InProcessQueue(eager=True))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {plain}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t", headers=headers
            ) as reader:
                assert (await reader.get("/v1/teams")).status_code == 200
        assert await self._last_used(database, row.id) is not None

    async def test_a_request_does_not_wait_for_another_recording_the_same_tokens_use(
        self, database: Database
    ) -> None:
        async with database.transaction() as session:
            row, plain = await auth.create(session=session, name="last use", scope=Scope.write)
        # Another request's transaction holds the row: it is recording a use of the token.
        async with database.engine.connect() as other:
            lock = sa.text("SELECT 1 FROM api_tokens WHERE id = :id FOR UPDATE")
            await other.execute(lock, {"id": row.id})
            async with database.transaction() as session:
                grant = await asyncio.wait_for(
                    auth.authenticate(session=session, token=plain, required=Scope.write), 5
                )
            assert grant.id == row.id
            await other.rollback()
        # The other one recorded nothing after all: the next request records the use.
        assert await self._last_used(database, row.id) is None
        async with database.transaction() as session:
            await auth.authenticate(session=session, token=plain, required=Scope.read)
        assert await self._last_used(database, row.id) is not None


class TestTokensApi:
    async def test_created_token_is_shown_once_and_only_its_hash_is_stored(
        self, admin: httpx.AsyncClient, database: Database
    ) -> None:
        made = (await admin.post("/v1/tokens", json={"name": "pmo", "scope": "write"})).json()
        assert made["token"].startswith("okr_")
        assert made["token"].startswith(made["prefix"])
        listed = (await admin.get("/v1/tokens")).json()["items"]
        shown = next(t for t in listed if t["id"] == made["id"])
        assert "token" not in shown
        assert "token_hash" not in shown
        assert "token" not in (await admin.get(f"/v1/tokens/{made['id']}")).json()
        async with database.sessionmaker() as session:
            row = await session.get(ApiToken, uuid.UUID(made["id"]))
        assert row is not None
        assert row.token_hash == hash_token(made["token"]) != made["token"]

    async def test_revoked_tokens_are_listed_only_when_asked(
        self, admin: httpx.AsyncClient
    ) -> None:
        made = (await admin.post("/v1/tokens", json={"name": "old", "scope": "read"})).json()
        await admin.delete(f"/v1/tokens/{made['id']}")
        default = [t["id"] for t in (await admin.get("/v1/tokens")).json()["items"]]
        everything = (await admin.get("/v1/tokens", params={"include_revoked": True})).json()
        assert made["id"] not in default
        assert made["id"] in [t["id"] for t in everything["items"]]

    async def test_expiry_in_the_past_and_unknown_scope_are_refused(
        self, admin: httpx.AsyncClient
    ) -> None:
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        response = await admin.post(
            "/v1/tokens", json={"name": "x", "scope": "read", "expires_at": past}
        )
        assert_problem(response, 422, "invalid-input")
        response = await admin.post("/v1/tokens", json={"name": "x", "scope": "root"})
        assert_problem(response, 422, "invalid-input")


class TestBootstrap:
    async def test_bootstrap_token_from_settings_is_registered_once_as_admin(
        self, database: Database, tmp_path: Any
    ) -> None:
        settings = Settings(data_dir=tmp_path, bootstrap_token="okr_automation-secret-value")
        app = create_app(settings, database=database, queue=InProcessQueue(eager=True))
        for _ in range(2):  # a restart must not add a second row
            async with app.router.lifespan_context(app):
                pass
        async with database.sessionmaker() as session:
            stmt = select(ApiToken).where(
                ApiToken.token_hash == hash_token("okr_automation-secret-value")
            )
            rows = (await session.exec(stmt)).all()
        assert [r.scope for r in rows] == ["admin"]
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport,
                base_url="http://t",
                headers={"Authorization": "Bearer okr_automation-secret-value"},
            ) as client,
        ):
            assert (await client.get("/v1/tokens")).status_code == 200

    async def test_first_admin_token_only_when_the_database_has_none(
        self, database: Database
    ) -> None:
        async with database.transaction() as session:
            first = await auth.create_first_admin_token(session=session)
            again = await auth.create_first_admin_token(session=session)
        assert first is not None
        assert again is None
        async with database.transaction() as session:
            row = await auth.authenticate(session=session, token=first, required=Scope.admin)
        assert row.scope == "admin"
