from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.errors import PROBLEM_TYPES, problem_type_uri
from tests.conftest import assert_problem


class TestProblemDetails:
    async def test_malformed_json_is_invalid_input(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/teams", content=b'{"key": ', headers={"content-type": "application/json"}
        )
        assert_problem(response, 422, "invalid-input")

    async def test_validation_problem_lists_every_error_with_its_location(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/v1/teams", json={"key": "Bad Key"})
        body = assert_problem(response, 422, "invalid-input")
        locs = sorted(tuple(e["loc"]) for e in body["errors"])
        assert locs == [("body", "key"), ("body", "name")]
        assert body["instance"] == "/v1/teams"

    async def test_unknown_route_and_wrong_method_are_problems(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
        assert_problem(await client.put("/v1/teams"), 405, "method-not-allowed")

    async def test_malformed_id_in_path_is_invalid_input(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/objectives/not-a-uuid"), 422, "invalid-input")

    async def test_unexpected_error_is_a_500_problem_that_reveals_nothing(
        self, app: Any, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("database password is hunter2")

        response = await client.get("/boom")
        body = assert_problem(response, 500, "internal-error")
        assert "hunter2" not in response.text
        assert body["instance"] == "/boom"
        assert any(r.msg == "http.unhandled_error" for r in caplog.records)

    async def test_every_problem_type_is_documented_at_its_uri(
        self, anonymous: httpx.AsyncClient
    ) -> None:
        for slug, (title, _) in PROBLEM_TYPES.items():
            doc = (await anonymous.get(problem_type_uri(slug))).json()
            assert (doc["type"], doc["title"]) == (problem_type_uri(slug), title)
        assert_problem(await anonymous.get("/problems/made-up"), 404, "not-found")
