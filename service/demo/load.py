"""The demo portfolio: a small company's teams, two quarters of OKRs with check-ins, a Jira
CSV export of its work run through the file connector, links and rules. Loaded through the
public API, as a user would load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

EXPORT = Path(__file__).with_name("jira-export.csv")
COMPANY = "acme"
TEAMS: list[dict[str, Any]] = [
    {"key": "acme", "name": "Acme Retail", "strategic_target": 0.5},
    {"key": "payments", "name": "Payments", "parent": "acme", "strategic_target": 0.6},
    {"key": "checkout", "name": "Checkout", "parent": "payments"},
    {"key": "platform", "name": "Platform", "parent": "acme", "strategic_target": 0.4},
]
PERIODS = [
    {"name": "2026-Q3", "start": "2026-07-01", "end": "2026-10-01"},
    {"name": "2026-Q4", "start": "2026-10-01", "end": "2027-01-01"},
]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code not in (200, 201, 202):
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()
    return result


async def loaded(client: httpx.AsyncClient) -> bool:
    return (await client.get(f"/v1/teams/{COMPANY}")).status_code == 200


async def load(client: httpx.AsyncClient) -> dict[str, Any]:
    """Create everything; returns the sync run of the CSV import."""
    for team in TEAMS:
        await _post(client, "/v1/teams", team)
    for period in PERIODS:
        await _post(client, "/v1/periods", period)

    async def objective(period: str, title: str, team: str, parent: str | None = None) -> str:
        body = {"title": title, "period": period, "team": team, "parent_id": parent}
        return str((await _post(client, "/v1/objectives", body))["id"])

    async def key_result(objective_id: str, title: str, **fields: Any) -> str:
        body = {"objective_id": objective_id, "title": title, **fields}
        return str((await _post(client, "/v1/key-results", body))["id"])

    foundations = await objective("2026-Q3", "Lay the foundations for peak season", "acme")
    await key_result(foundations, "Migrate checkout to the new platform", target_value=100,
                     unit="%", current_value=100)  # fmt: skip
    grow = await objective("2026-Q4", "Grow online revenue", "acme")
    pay = await objective("2026-Q4", "Make paying effortless", "payments", grow)
    chk = await objective("2026-Q4", "A checkout that converts", "checkout", pay)
    plt = await objective("2026-Q4", "Stay up at peak", "platform", grow)
    conversion = await key_result(chk, "Checkout conversion from 2.1% to 2.6%", start_value=2.1,
                                  target_value=2.6, unit="%")  # fmt: skip
    success = await key_result(pay, "Payment success rate from 97% to 99%", start_value=97,
                               target_value=99, unit="%")  # fmt: skip
    availability = await key_result(plt, "Peak-hour availability from 99.5% to 99.95%",
                                    start_value=99.5, target_value=99.95, unit="%")  # fmt: skip
    epics = await key_result(plt, "Ship the reliability epics", target_value=1,
                             progress_mode="linked", progress_basis="points")  # fmt: skip
    for kr, values in ((conversion, (2.2, 2.35)), (success, (97.4, 98.1)),
                       (availability, (99.7,))):  # fmt: skip
        for value in values:
            await _post(client, f"/v1/key-results/{kr}/check-ins",
                        {"value": value, "confidence": 0.7})  # fmt: skip

    connection = await _post(
        client,
        "/v1/connections",
        {
            "provider": "jira_csv",
            "name": "acme-jira-export",
            "config": {
                "path": str(EXPORT), "timezone": "Europe/Berlin",
                "site_url": "https://acme.atlassian.net",
                "team_map": {"PAY": "payments", "CHK": "checkout", "PLT": "platform",
                             "OPS": "acme"},
            },
            "credentials": {},
        },
    )  # fmt: skip
    run = await _post(client, f"/v1/connections/{connection['id']}/sync", {"mode": "full"})

    for labels, kr in ((["okr-growth"], conversion), (["okr-reliability"], availability),
                       (["okr-reliability"], epics)):  # fmt: skip
        await _post(client, "/v1/link-rules", {"match": {"labels": labels}, "key_result_id": kr})
    # The compliance epic serves the payment success rate, by hand.
    await _post(client, "/v1/links", {"key_result_id": success, "work_item_key": "PAY-79"})
    for name, match, priority, category in (
        ("Tech debt is improvement", {"labels": ["tech-debt"]}, 10, "improvement"),
        ("Support and incidents are heartbeat", {"labels": ["support", "incident"]}, 5,
         "heartbeat"),
        ("Compliance work is improvement", {"labels": ["compliance"]}, 1, "improvement"),
    ):  # fmt: skip
        body = {"name": name, "match": match, "priority": priority, "category": category}
        await _post(client, "/v1/classification-rules", body)
    result: dict[str, Any] = (await client.get(f"/v1/sync-runs/{run['id']}")).json()
    return result
