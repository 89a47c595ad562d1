"""The load benchmark's own bookkeeping: the CPU it reads from /proc, and its options."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, SpeedProbe, speed_text
from bench.load import (
    P99_TARGET_MS,
    best_within_target,
    cpu_seconds,
    process_cpu,
    process_waits,
)


def _ended_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_process_that_has_ended_counts_for_nothing() -> None:
    # PostgreSQL's backends end while the benchmark reads them; reading one that had gone
    # failed a CI run (ProcessLookupError) where it should leave the backend out.
    ended = _ended_process()
    assert process_cpu(ended) is None
    mine = process_cpu(os.getpid())
    assert mine is not None
    assert mine > 0
    both = cpu_seconds([ended, os.getpid()])
    assert mine <= both <= mine + 0.5


def test_waits_count_the_times_a_process_gave_up_its_core() -> None:
    assert process_waits(_ended_process()) is None
    before = process_waits(os.getpid())
    assert before is not None
    for _ in range(5):
        time.sleep(0.01)  # each sleep gives the core up
    after = process_waits(os.getpid())
    assert after is not None
    assert after >= before + 5


def test_each_kind_refuses_a_list_of_kinds() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.load", "--each-kind", "--kinds", "link"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--each-kind runs every kind" in run.stderr


def test_a_sweep_refuses_an_open_loop_and_client_counts_that_are_not_numbers() -> None:
    for args, said in (
        (["--sweep", "16,24", "--rate", "300"], "--sweep runs the whole mix in a closed loop"),
        (["--sweep", "16,many"], "--sweep: give client counts"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "bench.load", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 2
        assert said in run.stderr


def _run(requests: int, p99_ms: float, errors: dict[str, int] | None = None) -> dict[str, Any]:
    return {"all": {"requests": requests, "p99_ms": p99_ms}, "seconds": 10.0,
            "errors": errors or {}}  # fmt: skip


def test_a_sweep_reports_the_most_served_within_the_p99_target() -> None:
    rows = {
        16: _run(3000, 160.0),
        24: _run(3300, 210.0),
        # More served, but past the target, or with errors: not what the target allows.
        32: _run(3400, P99_TARGET_MS + 1),
        40: _run(3500, 200.0, {"503": 1}),
    }
    assert best_within_target(rows) == (24, 330.0)
    assert best_within_target({32: rows[32], 40: rows[40]}) is None


def test_a_process_ending_as_it_is_read_counts_for_nothing(monkeypatch: Any) -> None:
    # Reading the stat file of a process that is exiting fails with ESRCH, not ENOENT.
    read_text = Path.read_text

    def exiting(path: Path, *args: Any, **kwargs: Any) -> str:
        if path == Path("/proc/1/stat"):
            raise ProcessLookupError(3, "No such process")
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", exiting)
    assert process_cpu(1) is None
    assert cpu_seconds([1, os.getpid()]) > 0


def test_the_speed_probe_times_the_machine_while_its_block_runs() -> None:
    # CPU time, not wall time: a core taken by the load does not make the machine look slow.
    with SpeedProbe(every=0.05) as probe:
        time.sleep(0.05)  # waiting costs no CPU, so it cannot count as a slow loop
        while len(probe.samples) < 3:
            time.sleep(0.05)
    taken = len(probe.samples)
    time.sleep(0.2)
    assert len(probe.samples) == taken  # stopped with its block
    assert all(0 < sample < 60 for sample in probe.samples)
    median = statistics.median(probe.samples)
    ranged = f"({min(probe.samples):.2f}-{max(probe.samples):.2f}, {taken} samples)"
    assert probe.summary() == f"{speed_text(median)} {ranged}"
    assert probe.spread() == f"{median:.2f} {ranged}"
    assert SpeedProbe().summary() == "no speed samples"
    assert SpeedProbe().spread() == "no samples"
