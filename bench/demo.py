"""Wall time and peak memory of the demo run (what `make demo` runs after installing).

Runs `dreamer generate "a red cube"` with the default preset in a subprocess, twice: cold (empty
reference-prior cache, as on a fresh machine) and warm (cache filled). Writes docs/benchmarks.md.
Usage: python bench/demo.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_once(cache: Path, out: Path) -> tuple[float, float]:
    env = dict(os.environ, DREAMER_CACHE=str(cache))
    cmd = [sys.executable, "-m", "dreamer", "generate", "a red cube", "--out", str(out), "--quiet",
           "--formats", "obj,ply"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"demo run failed with status {status}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dreamer-demo-bench-"))
    try:
        cold = run_once(work / "cache", work / "cold")
        warm = run_once(work / "cache", work / "warm")
        eval_text = (work / "warm" / "eval.json").read_text()
    finally:
        pass
    import json

    ev = json.loads(eval_text)
    rows = [["cold (empty cache)", f"{cold[0]:.0f}", f"{cold[1]:.0f}"],
            ["warm (cache filled)", f"{warm[0]:.0f}", f"{warm[1]:.0f}"]]
    table = markdown_table(["run", "wall time (s)", "peak memory (MB)"], rows)
    print(table)
    body = (f"`dreamer generate \"a red cube\"` with the default preset (what `make demo` runs once installed): "
            f"training, model.glb/.obj/.ply, turntable video and eval. Target: under 3 minutes.\n\n{table}\n\n"
            f"Result of the warm run: IoU {ev['iou']:.3f}, colour error {ev['colour_error']:.3f}.")
    write_section("demo", "Demo: wall time and peak memory", body, "python bench/demo.py")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
