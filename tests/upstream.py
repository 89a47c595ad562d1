"""The recorded provider payloads in ../shared/upstream (see its PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).resolve().parents[2] / "shared" / "upstream"


def jsonl(relative: str) -> list[tuple[str, Any]]:
    """(request URL, response body) rows of a devlake-style capture."""
    rows = []
    for line in (UPSTREAM / relative).read_text().splitlines():
        row = json.loads(line)
        data = row["data"]
        rows.append((row["url"], json.loads(data) if isinstance(data, str) else data))
    return rows


def load(relative: str) -> Any:
    return json.loads((UPSTREAM / relative).read_text())
