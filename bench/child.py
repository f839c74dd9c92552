"""`dreamer generate` as a child process, timed, with its peak memory read from the kernel (wait4):
what a user runs, measured the same way by every benchmark that runs whole prompts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class ChildRun:
    seconds: float  # wall time of the whole process (training, export, eval)
    peak_mb: float  # its peak resident memory
    returncode: int
    error: str | None  # the last line of stderr when it failed


def run_generate(args: list[str]) -> ChildRun:
    """`python -m dreamer.cli generate ARGS` with stdout discarded."""
    cmd = [sys.executable, "-m", "dreamer.cli", "generate", *args]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    err = child.stderr.read().decode(errors="replace").strip()
    child.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    return ChildRun(seconds, usage.ru_maxrss / 1024, code, err.splitlines()[-1] if code and err else None)
