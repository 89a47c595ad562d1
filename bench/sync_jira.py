"""Benchmark: a full Jira sync against the local Jira, against the floor of a bare download.

    python -m bench.sync_jira                         # 10k and 100k, Cloud and Data Center,
                                                      # SQLite and PostgreSQL
    python -m bench.sync_jira --sizes 2000 --backends sqlite   # a smoke run
    python -m bench.sync_jira --latency 0.25          # each answer 0.25 s late, as over a WAN

For each deployment and size, a local Jira with that many issues runs in its own process.
The floor is a bare httpx download of the same pages (the same searches, bulk fetches and
changelogs, with nothing parsed into items or stored). Each okr-sync sync runs in a fresh
process on a fresh database, so its peak RSS is its own; its wall time ends at the run's last
commit, and the event scan and roll-up compaction the run asks for then (jobs of their own,
on any worker) are timed apart. Results print as a Markdown table.
"""

from __future__ import annotations

import argparse
import base64
import math
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.common import ROOT, free_port, machine, measure_sync
from connectors.jira.connector import BODY_CHUNK, DC_PAGE, DC_WINDOW, ID_PAGE, build_jql
from connectors.jira.mapping import FieldIds
from tests.fakes.jira import API_TOKEN, EMAIL, PAT

DISCOVERY_CALLS = 4


def auth(cloud: bool) -> dict[str, str]:
    if cloud:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
        }
    return {"Authorization": f"Bearer {PAT}"}


def start_jira(
    issues: int, deployment: str, latency: float = 0.0
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "tests.fakes.jira", "--issues", str(issues),
        "--deployment", deployment, "--port", str(port), "--latency", str(latency),
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/rest/api/2/serverInfo", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the local Jira did not start")


def minimum_calls(issues: int, cloud: bool) -> int:
    # Both end with a search for what changed from the start's minute on.
    if cloud:
        return (
            DISCOVERY_CALLS
            + max(1, math.ceil(issues / ID_PAGE))
            + 2 * math.ceil(issues / BODY_CHUNK)
            + 1
        )
    return DISCOVERY_CALLS + max(1, math.ceil(issues / DC_PAGE)) + 1


def bare_download(url: str, cloud: bool) -> tuple[float, int]:
    """Fetch what the connector fetches and parse nothing beyond ids and times: the floor."""
    zone = ZoneInfo("Europe/Berlin")  # the local Jira's user zone
    # The same field list the connector asks for, so the same bytes cross the wire.
    points = "customfield_10016" if cloud else "customfield_10002"
    epic, parent = (None, None) if cloud else ("customfield_10100", "customfield_10200")
    fields = FieldIds(points, epic, parent).requested()
    start = time.perf_counter()
    calls = 0
    with httpx.Client(base_url=url, headers=auth(cloud), timeout=120) as client:
        until = datetime.now(UTC)
        if cloud:
            jql = build_jql("", None, until, zone)
            token = None
            while True:
                body: dict[str, Any] = {"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}
                if token:
                    body["nextPageToken"] = token
                found = client.post("/rest/api/3/search/jql", json=body).json()
                ids = [i["id"] for i in found["issues"]]
                for at in range(0, len(ids), BODY_CHUNK):
                    chunk = ids[at : at + BODY_CHUNK]
                    client.post(
                        "/rest/api/3/issue/bulkfetch",
                        json={"issueIdsOrKeys": chunk, "fields": fields},
                    ).read()
                    client.post(
                        "/rest/api/3/changelog/bulkfetch",
                        json={"issueIdsOrKeys": chunk, "fieldIds": ["status"]},
                    ).read()
                calls += 1 + 2 * math.ceil(len(ids) / BODY_CHUNK)
                token = found.get("nextPageToken")
                if found.get("isLast", True):
                    break
        else:
            since: datetime | None = None
            start_at = 0
            while True:
                params = {
                    "jql": build_jql("", since, until, zone),
                    "startAt": start_at,
                    "maxResults": DC_PAGE,
                    "fields": ",".join(fields),
                    "expand": "changelog",
                }
                page = client.get("/rest/api/2/search", params=params).json()
                calls += 1
                issues = page["issues"]
                start_at += len(issues)
                if not issues or start_at >= page["total"]:
                    break
                if start_at + DC_PAGE > DC_WINDOW:
                    last = issues[-1]["fields"]["updated"]
                    since, start_at = datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%f%z"), 0
    return time.perf_counter() - start, calls


def measure(url: str, backend: str, cloud: bool) -> dict[str, Any]:
    credentials = {"email": EMAIL, "api_token": API_TOKEN} if cloud else {"token": PAT}
    return measure_sync("jira", {"url": url}, credentials, backend)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--deployments", nargs="+", default=["cloud", "datacenter"])
    parser.add_argument(
        "--latency", type=float, default=0.0,
        help="seconds the local Jira takes to answer each request (0: loopback speed)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"Machine: {machine()}; the local Jira answers after {args.latency} s\n")
    print(
        "| deployment | issues | backend | wall s | items/s | floor s | wall / floor "
        "| API calls | minimum | peak RSS MB | jobs after s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for deployment in args.deployments:
        cloud = deployment == "cloud"
        for size in args.sizes:
            proc, url = start_jira(size, deployment, args.latency)
            try:
                bare_download(url, cloud)  # warm the server's caches once
                floor, _ = bare_download(url, cloud)
                for backend in args.backends:
                    r = measure(url, backend, cloud)
                    print(
                        f"| {deployment} | {r['fetched']} | {backend} | {r['wall']:.1f} "
                        f"| {r['fetched'] / r['wall']:.0f} | {floor:.1f} | {r['wall'] / floor:.2f} "
                        f"| {r['api_calls']} | {minimum_calls(r['fetched'], cloud)} "
                        f"| {r['peak_rss_mb']:.0f} | {r['after']:.1f} |",
                        flush=True,
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
