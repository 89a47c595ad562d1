"""Lint the Dockerfile, render the Helm chart and validate what comes out, and the compose
file, against their schemas; no cluster and no container engine needed.

    python -m venv .venv-deploy && .venv-deploy/bin/pip install -r deploy/requirements-check.txt
    .venv-deploy/bin/python deploy/validate.py

The chart is linted and rendered (install and upgrade) with Helm's own Go code, for each
values case below; every rendered manifest is checked with kubernetes-validate in strict mode
(unknown fields are errors) against each Kubernetes version named; compose.yaml is checked
against the Compose specification's schema; the Dockerfile passes hadolint with no warning,
builds in more than one stage, runs as a user other than root and declares a health check.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE / "helm" / "okr-sync"
KUBERNETES = ["1.30.0", "1.33.0"]
SECRETS = {
    "databaseUrl": "postgresql://okr_sync:secret@postgres:5432/okr_sync",
    "redisUrl": "redis://redis:6379/0",
    "secretKey": "x" * 43 + "=",
}
CASES = {
    "defaults": {"secrets": SECRETS},
    "fixed replicas, own secret": {
        "existingSecret": "okr-sync-env",
        "api": {"autoscaling": {"enabled": False}, "replicas": 3},
        "worker": {"replicas": 4},
    },
}
# What every case must render, by kind: (API, worker), service, migration hook, config.
EXPECTED = {"Deployment": 2, "Service": 1, "Job": 1, "ConfigMap": 1}


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    raise SystemExit(1)


def rendered(values: dict[str, object], upgrade: bool) -> list[dict[str, object]]:
    chart = helm_python.Chart.load(CHART)
    try:
        manifests = chart.render(
            values, name="okr", namespace="okr-sync", is_install=not upgrade, is_upgrade=upgrade
        )
    finally:
        chart.close()
    docs = []
    for text in manifests.values():
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def check_chart() -> None:
    for name, values in CASES.items():
        lint = helm_python.lint(CHART, values, strict=True)
        if lint["errors"]:
            fail(f"helm lint ({name}): {lint['errors']}")
        for upgrade in (False, True):
            docs = rendered(values, upgrade)
            kinds: dict[str, int] = {}
            for doc in docs:
                kinds[str(doc["kind"])] = kinds.get(str(doc["kind"]), 0) + 1
            for kind, count in EXPECTED.items():
                if kinds.get(kind) != count:
                    fail(f"{name}: expected {count} {kind}, rendered {kinds}")
            api: dict[str, dict[str, bool]] = values.get("api", {})  # type: ignore[assignment]
            autoscaled = api.get("autoscaling", {}).get("enabled", True)
            hpas = kinds.get("HorizontalPodAutoscaler", 0)
            if hpas != int(autoscaled):
                fail(f"{name}: {hpas} HorizontalPodAutoscaler rendered")
            job = next(d for d in docs if d["kind"] == "Job")
            hooks = job["metadata"]["annotations"]["helm.sh/hook"]  # type: ignore[index]
            if "pre-upgrade" not in hooks:
                fail("the migration job is not a pre-upgrade hook")
            for doc in docs:
                if doc["kind"] == "Deployment":
                    container = doc["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
                    if "resources" not in container or "requests" not in container["resources"]:
                        fail(f"{doc['metadata']['name']}: no resource requests")  # type: ignore[index]
            with tempfile.TemporaryDirectory() as tmp:
                paths = []
                for i, doc in enumerate(docs):
                    path = Path(tmp) / f"{i:02d}-{doc['kind']}.yaml"
                    path.write_text(yaml.safe_dump(doc))
                    paths.append(str(path))
                for version in KUBERNETES:
                    result = subprocess.run(
                        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict",
                         "-k", version, "--quiet", *paths],
                        capture_output=True, text=True,
                    )  # fmt: skip
                    if result.returncode != 0:
                        fail(f"{name} on Kubernetes {version}:\n{result.stdout}{result.stderr}")
            print(f"chart ok: {name}, {'upgrade' if upgrade else 'install'}: {kinds}")
    # A missing required secret must stop the render, not produce an empty Secret.
    try:
        rendered({}, False)
    except helm_python.HelmError as exc:
        if "secrets.databaseUrl is required" not in str(exc):
            fail(f"unexpected render error without secrets: {exc}")
    else:
        fail("the chart rendered without the required secrets")


def check_compose() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
         "vendor.compose-spec", str(HERE / "compose.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        fail(f"compose.yaml:\n{result.stdout}{result.stderr}")
    services = yaml.safe_load((HERE / "compose.yaml").read_text())["services"]
    missing = {"api", "worker", "postgres", "redis", "migrate"} - services.keys()
    if missing:
        fail(f"compose.yaml lacks {sorted(missing)}")
    print("compose ok:", ", ".join(sorted(services)))


def check_dockerfile() -> None:
    dockerfile = HERE / "Dockerfile"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), "--failure-threshold", "warning",
         str(dockerfile)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        fail(f"hadolint:\n{result.stdout}{result.stderr}")
    lines = [line.split() for line in dockerfile.read_text().splitlines() if line.strip()]
    instructions = [words for words in lines if not words[0].startswith("#")]
    if sum(1 for words in instructions if words[0] == "FROM") < 2:
        fail("the Dockerfile is not multi-stage")
    users = [words[1] for words in instructions if words[0] == "USER"]
    if not users or users[-1] in {"root", "0"}:
        fail("the image runs as root")
    if not any(words[0] == "HEALTHCHECK" for words in instructions):
        fail("the image declares no health check")
    print("Dockerfile ok")


if __name__ == "__main__":
    check_dockerfile()
    check_chart()
    check_compose()
