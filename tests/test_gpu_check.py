"""bench/gpu_check.sh stays runnable and bench/gpu_timing.py times every paper preset (issue 21).

The GPU check itself runs in CI as `bench/gpu_check.sh --cpu` (.ci/run); these are the cheap guards:
the script parses and is executable, and a new paper preset in configs/ cannot be left out of the timing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def gpu_timing():
    spec = importlib.util.spec_from_file_location("gpu_timing", ROOT / "bench" / "gpu_timing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_timing"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def paper_presets() -> set[str]:
    """configs/*.yaml without the CPU twins (-tiny) and the CPU presets default, reference, 4d and 4d-oracle."""
    return {p.stem for p in (ROOT / "configs").glob("*.yaml")
            if not p.stem.endswith("-tiny") and p.stem not in ("default", "reference", "4d", "4d-oracle")}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_script_parses_and_is_executable():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK), "chmod +x bench/gpu_check.sh"


def test_gpu_timing_covers_every_paper_preset():
    presets = paper_presets()
    assert len(presets) >= 7  # dreamfusion-sd … scaledreamer-asd
    timed = set(gpu_timing().PRESETS) | set(gpu_timing().NOT_TIMED)  # NOT_TIMED: rows that say why
    assert presets - timed == set(), f"add to PRESETS in bench/gpu_timing.py: {sorted(presets - timed)}"
    assert timed - presets == set(), f"no such preset in configs/: {sorted(timed - presets)}"


def test_gpu_timing_can_build_every_preset_prior():
    from dreamer.config import load_yaml

    module = gpu_timing()
    priors = {load_yaml(ROOT / "configs" / f"{p}.yaml")["prior"]["name"] for p in module.PRESETS}
    priors |= {prior for _, _, prior in module.EXTRA}
    assert priors <= set(module.BUILT_PRIORS), sorted(priors - set(module.BUILT_PRIORS))


def test_ci_and_make_run_the_gpu_check():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index("bench/gpu_check.sh --cpu")
    assert "gpu-check:" in (ROOT / "Makefile").read_text()
