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


class TestInputIsTakenAsSent:
    async def test_an_unknown_query_parameter_is_refused_not_ignored(
        self, client: httpx.AsyncClient
    ) -> None:
        # A typo in a filter would otherwise answer with everything, unfiltered.
        response = await client.get("/v1/work-items", params={"tema": "payments"})
        body = assert_problem(response, 422, "invalid-input")
        assert body["errors"] == [{"loc": ["query", "tema"], "msg": "unknown parameter"}]
        assert "team" in body["detail"]  # it names the ones the operation takes
        assert (await client.get("/v1/work-items", params={"limit": 5})).status_code == 200
        # Operations that need no token check theirs too, and a guarded one checks its query
        # before its token.
        assert_problem(await client.get("/healthz", params={"verbose": 1}), 422, "invalid-input")
        client.headers.pop("Authorization")
        assert_problem(
            await client.get("/v1/work-items", params={"tema": "x"}), 422, "invalid-input"
        )

    async def test_a_query_parameter_given_twice_is_refused_not_half_read(
        self, client: httpx.AsyncClient
    ) -> None:
        # FastAPI would take the last value and drop the first without a word.
        response = await client.get("/v1/links?cursor=bad&cursor=&limit=5&limit=6")
        body = assert_problem(response, 422, "invalid-input")
        assert body["errors"] == [
            {"loc": ["query", "cursor"], "msg": "given more than once"},
            {"loc": ["query", "limit"], "msg": "given more than once"},
        ]
        assert (await client.get("/v1/links?cursor=&limit=5")).status_code == 200

    @pytest.mark.parametrize(
        ("method", "path", "kwargs"),
        [
            ("get", "/v1/teams", {"params": {"cursor": "a\x00b"}}),
            ("get", "/v1/teams/a%00b", {}),
            ("post", "/v1/teams", {"json": {"key": "eng", "name": "Eng\x00ineering"}}),
            ("post", "/v1/teams", {"json": {"key": "eng", "name": "Eng", "\x00": 1}}),
        ],
        ids=["query", "path", "body-value", "body-key"],
    )
    async def test_text_with_a_nul_character_is_refused_before_it_reaches_the_database(
        self, client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]
    ) -> None:
        # PostgreSQL cannot store U+0000: without the check this was a 500 there.
        response = await client.request(method.upper(), path, **kwargs)
        body = assert_problem(response, 422, "invalid-input")
        assert "NUL" in body["detail"]
        assert (await client.get("/v1/teams")).json()["items"] == []

    @pytest.mark.parametrize(
        ("field", "value"),
        [("priority", False), ("priority", "5"), ("priority", 2.5)],
    )
    async def test_numbers_must_be_json_numbers(
        self, client: httpx.AsyncClient, field: str, value: Any
    ) -> None:
        rule = {"name": "ops", "category": "heartbeat", "match": {"labels": ["ops"]}}
        response = await client.post("/v1/classification-rules", json=rule | {field: value})
        assert_problem(response, 422, "invalid-input")
        made = await client.post("/v1/classification-rules", json=rule | {field: 5})
        assert made.status_code == 201, made.text

    async def test_a_boolean_must_be_a_json_boolean(self, admin: httpx.AsyncClient) -> None:
        endpoint = {"url": "https://hooks.example.com/okr", "enabled": 1}
        response = await admin.post("/v1/webhook-endpoints", json=endpoint)
        assert_problem(response, 422, "invalid-input")

    @pytest.mark.parametrize("day", ["0", "1700000000", "2026-1-5", "5 Jan 2026"])
    async def test_a_day_is_written_yyyy_mm_dd(self, client: httpx.AsyncClient, day: str) -> None:
        # pydantic alone would read a number, or a string of digits, as seconds since 1970.
        response = await client.get("/v1/periods", params={"contains": day})
        assert_problem(response, 422, "invalid-input")
        created = await client.post(
            "/v1/periods", json={"name": "2026-q1", "start": day, "end": "2026-04-01"}
        )
        assert_problem(created, 422, "invalid-input")
        assert (await client.get("/v1/periods", params={"contains": "2026-02-01"})).is_success

    async def test_a_wrong_method_names_every_method_the_path_takes(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.put("/v1/teams")
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == "GET, HEAD, POST"


async def test_the_schema_describes_every_error_as_a_problem_document(app: Any) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {int(s) for s in responses if int(s) >= 400}
            assert 422 in errors, (method, path)
            if "x-required-scope" in operation:
                assert {401, 403} <= errors, (method, path)
            if "{" in path:
                assert 404 in errors, (method, path)
            for status in errors:
                assert responses[str(status)]["content"] == problem, (method, path, status)
