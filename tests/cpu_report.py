"""Where `make test`'s time goes: `--cpu-report=FILE` records, for every test, the CPU seconds of the test's
own process and of the child processes it waited for (subprocesses, torchrun, an app server), and its wall
time, one JSON line per test in FILE (every xdist worker appends); at the end the main process prints the
files that cost the most CPU. Processes nobody waits for (Ray's workers, a browser's helpers) are not counted.

    .venv/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --cpu-report=/tmp/cpu.jsonl
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--cpu-report", metavar="FILE", default=None,
                     help="append each test's CPU (own and waited-for children) and wall seconds to FILE, as JSON "
                          "lines; print the costliest test files at the end")


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    path = item.config.getoption("--cpu-report")
    if not path:
        yield
        return
    own, children, wall = *_cpu(), time.monotonic()
    yield
    own2, children2 = _cpu()
    record = {"test": item.nodeid, "own": round(own2 - own, 3), "children": round(children2 - children, 3),
              "wall": round(time.monotonic() - wall, 3), "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def by_file(records: list[dict]) -> list[tuple[str, float, float, float, int]]:
    """(file, own CPU, children's CPU, wall, tests) per test file, the costliest in CPU first."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for r in records:
        t = totals[r["test"].split("::")[0]]
        t[0] += r["own"]
        t[1] += r["children"]
        t[2] += r["wall"]
        t[3] += 1
    rows = [(name, own, children, wall, int(n)) for name, (own, children, wall, n) in totals.items()]
    return sorted(rows, key=lambda row: -(row[1] + row[2]))


def pytest_terminal_summary(terminalreporter, config):
    path = config.getoption("--cpu-report")
    if not path or os.environ.get("PYTEST_XDIST_WORKER") or not Path(path).is_file():
        return
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = by_file(records)
    own, children = sum(r[1] for r in rows), sum(r[2] for r in rows)
    terminalreporter.section(f"CPU by test file ({path})")
    terminalreporter.write_line(f"{len(records)} tests: {own:.0f} s own CPU, {children:.0f} s in waited-for children")
    for name, own_s, children_s, wall, n in rows[:15]:
        terminalreporter.write_line(f"{own_s + children_s:7.1f} s CPU ({children_s:5.1f} children) {wall:7.1f} s wall"
                                    f" {n:4d} tests  {name}")
