"""Schemathesis against the served ``/openapi.json``, with a token of each scope: no 5xx,
every response as the schema says, every error a problem+json document.

The profile fits CI (a few examples an operation and scope, no shrinking); for a longer
run, set ``OKR_SYNC_FUZZ_EXAMPLES`` (say 200).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.specs.openapi import checks

from service.app import create_app
from service.auth.scopes import Scope
from service.settings import Settings
from tests.robustness.conftest import LiveServer

EXAMPLES = int(os.environ.get("OKR_SYNC_FUZZ_EXAMPLES", "8"))

# The schema the server serves, built here without a server so that pytest can collect one
# test per operation; a test asserts it equals the served one.
SCHEMA_DOCUMENT = create_app(Settings(database_url="sqlite://")).openapi()
schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT)


@schemathesis.check
def errors_are_problem_documents(ctx: Any, response: Any, case: Case) -> bool | None:  # noqa: ARG001
    """Every 4xx and 5xx answer is RFC 9457 problem+json with its type, title and status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}"
    )
    body = response.json()
    missing = {"type", "title", "status"} - set(body)
    assert not missing, f"problem document without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code
    return True


def test_the_served_schema_is_the_one_fuzzed(live_server: LiveServer) -> None:
    import httpx

    served = httpx.get(f"{live_server.url}/openapi.json").json()
    assert served == SCHEMA_DOCUMENT


@pytest.mark.parametrize("scope", list(Scope))
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_errs_or_strays_from_its_schema(
    case: Case, scope: Scope, live_server: LiveServer
) -> None:
    # Left out: positive_data_acceptance, which wants every schema-valid request accepted;
    # the domain rejects some with a 422 the schema cannot express (a cursor this API did
    # not issue, a period that ends before it starts, a team that does not exist).
    case.call_and_validate(
        base_url=live_server.url,
        headers=live_server.headers(scope),
        excluded_checks=[checks.positive_data_acceptance],
    )
