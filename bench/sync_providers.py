"""Benchmark: full GitHub and Linear syncs against local servers, against the floor of a bare
download, and against Singer's GitHub tap on the same local GitHub.

    python -m bench.sync_providers            # 10k and 50k items; SQLite and PostgreSQL
    python -m bench.sync_providers --sizes 2000 --backends sqlite   # the smoke run CI does

For each provider and size, a local server (``tests.fakes.github`` with GitHub's newer cursor
links, ``tests.fakes.linear`` on Linear's schema) serves that many issues from its own
process. The floor is a bare httpx download of the same lists, page by page, with nothing
parsed into items or stored. Each okr-sync sync runs in a fresh process on a fresh database
(``bench.common.measure_sync``).

Singer's tap (``meltanolabs-tap-github``) is installed in its own virtual environment
(``bench/.tap-github-venv``, made once) and runs with only its ``issues`` stream selected,
writing its Singer messages to /dev/null. Its one call to validate the token goes to a
hard-coded api.github.com; a wrapper points that call at the local server, nothing else. The
ratio compares process wall times (both start cold: okr-sync's includes creating and
migrating its database, and storing and deriving every item).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, free_port, machine, measure_sync
from tests.fakes.github import TOKEN
from tests.fakes.linear import API_KEY

TAP = "meltanolabs-tap-github==1.30.1"
TAP_VENV = ROOT / "bench" / ".tap-github-venv"
REPOS = ["acme/api", "acme/web"]
TEAMS = ["ENG", "WEB"]
# The token check's URL is fixed in the tap; point it at the local server.
TAP_WRAPPER = """
import sys, requests
base = sys.argv.pop(1)
real_get = requests.get
requests.get = lambda url, *a, **k: real_get(url.replace("https://api.github.com", base), *a, **k)
from tap_github.tap import TapGitHub
TapGitHub.cli()
"""


def start(provider: str, issues: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    module = f"tests.fakes.{provider}"
    extra = ["--cursor-links"] if provider == "github" else []
    command = [sys.executable, "-m", module, "--issues", str(issues), "--port", str(port), *extra]
    proc = subprocess.Popen(command, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    url = base if provider == "github" else f"{base}/graphql"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/rate_limit" if provider == "github" else base, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the local {provider} did not start")


def floor_github(url: str) -> tuple[float, int]:
    """Every page of every repository's issue list, followed by its `next` link."""
    start = time.perf_counter()
    calls = 0
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        for repo in REPOS:
            params: dict[str, Any] | None = {
                "state": "all", "sort": "updated", "direction": "asc", "per_page": 100,
            }  # fmt: skip
            next_url: str | None = f"{url}/repos/{repo}/issues"
            while next_url:
                response = client.get(next_url, params=params)
                response.read()
                calls += 1
                next_url, params = response.links.get("next", {}).get("url"), None
    return time.perf_counter() - start, calls


def floor_linear(url: str) -> tuple[float, int]:
    """The label catalogue and every page of the three lists, by end cursor."""
    from connectors.linear.connector import EPOCH
    from connectors.linear.documents import ALL

    start = time.perf_counter()
    calls = 0
    with httpx.Client(headers={"Authorization": API_KEY}, timeout=120) as client:
        for name, field in (("Labels", "issueLabels"), ("Initiatives", "initiatives"),
                            ("Projects", "projects"), ("Issues", "issues")):  # fmt: skip
            after = None
            while True:
                variables = {"teams": TEAMS, "since": EPOCH, "after": after}
                body = {"query": ALL[name], "variables": variables, "operationName": name}
                page = client.post(url, json=body).json()["data"][field]
                calls += 1
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
    return time.perf_counter() - start, calls


def ensure_tap() -> Path:
    python = TAP_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TAP_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", TAP],
            check=True,
        )
    return python


def run_tap(python: Path, url: str) -> tuple[float, int]:
    """The tap's issues stream, from a cold process; (wall seconds, records written)."""
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        config = {"auth_token": TOKEN, "repositories": REPOS, "api_url_base": url,
                  "start_date": "2000-01-01T00:00:00Z"}  # fmt: skip
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "wrapper.py").write_text(TAP_WRAPPER)
        wrapper, settings = str(folder / "wrapper.py"), str(folder / "config.json")
        base = [str(python), wrapper, url, "--config", settings]
        found = subprocess.run([*base, "--discover"], capture_output=True, check=True, text=True)
        catalog = json.loads(found.stdout)
        for stream in catalog["streams"]:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = stream["tap_stream_id"] == "issues"
        (folder / "catalog.json").write_text(json.dumps(catalog))
        started = time.perf_counter()
        with open("/dev/null", "w") as sink:
            subprocess.run(
                [*base, "--catalog", str(folder / "catalog.json")],
                stdout=sink, stderr=subprocess.DEVNULL, check=True,
            )  # fmt: skip
        wall = time.perf_counter() - started
        # Count the records once more, outside the timing, to show the tap read everything;
        # streamed, so that this process stays small (its children's sizes are measured).
        records = 0
        with subprocess.Popen(
            [*base, "--catalog", str(folder / "catalog.json")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        ) as tap:  # fmt: skip
            assert tap.stdout is not None
            records = sum(1 for line in tap.stdout if '"type":"RECORD"' in line)
        return wall, records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--providers", nargs="+", default=["github", "linear"])
    parser.add_argument("--no-tap", action="store_true", help="skip Singer's tap")
    args = parser.parse_args()
    tap = None if args.no_tap or "github" not in args.providers else ensure_tap()
    print(f"Machine: {machine()}\n")
    print(
        "| provider | items | backend | sync s | items/s | floor s | sync / floor | API calls "
        "| floor calls | peak RSS MB | process s | tap s (records) | process / tap |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for provider in args.providers:
        for size in args.sizes:
            proc, url = start(provider, size)
            try:
                floor_of = floor_github if provider == "github" else floor_linear
                floor_of(url)  # warm the server once
                floor, floor_calls = floor_of(url)
                tap_wall, tap_records = (
                    run_tap(tap, url) if provider == "github" and tap else (math.nan, 0)
                )
                for backend in args.backends:
                    if provider == "github":
                        config = {"api_url": url, "repos": REPOS}
                        credentials = {"token": TOKEN}
                    else:
                        config = {"api_url": url, "teams": TEAMS}
                        credentials = {"api_key": API_KEY}
                    started = time.perf_counter()
                    r = measure_sync(provider, config, credentials, backend)
                    process = time.perf_counter() - started
                    tap_cells = (
                        f"{tap_wall:.1f} ({tap_records}) | {process / tap_wall:.2f}"
                        if not math.isnan(tap_wall) else "– | –"
                    )  # fmt: skip
                    print(
                        f"| {provider} | {r['fetched']} | {backend} | {r['wall']:.1f} "
                        f"| {r['fetched'] / r['wall']:.0f} | {floor:.1f} | {r['wall'] / floor:.2f} "
                        f"| {r['api_calls']} | {floor_calls} | {r['peak_rss_mb']:.0f} "
                        f"| {process:.1f} | {tap_cells} |",
                        flush=True,
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
