"""bench/gpu_check.sh stays runnable and bench/gpu_timing.py times every paper preset (issue 21).

The GPU check itself runs in CI as `bench/gpu_check.sh --cpu` (.ci/run); these are the guards: the script
parses and is executable, a new paper preset in configs/ cannot be left out of the timing, every row's priors
load from random-weight folders (bench/random_models.py, tested in tests/test_random_models.py), and the 4D
rows run end to end on the CPU with tiny models.
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


def random_models():
    gpu_timing()  # puts bench/ on sys.path
    import random_models

    return random_models


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
    """Every row's priors (a 4D preset's frame prior too) get their weights from random-weight folders."""
    from dreamer.config import load_yaml

    module = gpu_timing()
    rows = module.plan(None)
    assert {r.label for r in rows} == set(module.PRESETS) | {label for label, _, _ in module.EXTRA}
    models = set(random_models().MODELS)
    assert set(module.BUILD_ORDER) == models
    for row in rows:
        data = load_yaml(ROOT / "configs" / f"{row.preset}.yaml")
        assert row.weights["prior.model"] in models, row.label
        assert set(row.weights.values()) <= models and row.models
        assert bool(row.image_prior) == ("motion" in data), row.label
        if row.image_prior:
            assert row.image_prior == data["motion"]["image_prior"]["name"]
            assert "motion.image_prior.model" in row.weights


def test_gpu_timing_times_the_4d_presets_with_random_video_unets():
    """4d-animatediff and 4d-zeroscope are timed rows (no longer "not timed"), loading every prior they use from
    the builders' folders: SD 1.5 + the motion adapter (SD 1.5 also for frames); zeroscope + SD 2.1-base frames."""
    module = gpu_timing()
    rows = {r.label: r for r in module.plan(None)}
    assert not {"4d-animatediff", "4d-zeroscope"} & set(module.NOT_TIMED)
    assert rows["4d-animatediff"].weights == {"prior.model": "sd15", "prior.motion_adapter": "motion-adapter",
                                              "motion.image_prior.model": "sd15"}
    assert rows["4d-zeroscope"].weights == {"prior.model": "zeroscope", "motion.image_prior.model": "sd21-base"}
    assert (rows["4d-animatediff"].image_prior, rows["4d-zeroscope"].image_prior) == ("sd15", "sd21-base")
    order = [r.label for r in module.plan(None)]
    # 4d-zeroscope right after the presets on SD 2.1-base (whose folder it reuses, so it is built once)
    sd21 = [r.label for r in module.plan(None) if r.models == ("sd21-base",)]
    assert order[:len(sd21) + 1] == [*sd21, "4d-zeroscope"]
    assert module.plan(["4d-animatediff"])[0].models == ("sd15", "motion-adapter")


def test_gpu_timing_4d_overrides():
    module = gpu_timing()
    assert module.timing_static_steps(50, 5) == 20 and module.timing_static_steps(5, 1) == 2
    weights = {"prior.model": Path("/m/sd15"), "prior.motion_adapter": Path("/m/ma"),
               "motion.image_prior.model": Path("/m/sd15")}
    gpu = module.run_overrides(50, "cuda", weights, prior="animatediff", representation="gaussians4d",
                               static_steps=20)
    assert {"prior.model=/m/sd15", "prior.motion_adapter=/m/ma", "motion.image_prior.model=/m/sd15",
            "motion.static_steps=20", "steps=50"} <= set(gpu)
    assert not any(d.startswith(("prior.dtype", "prior.num_frames", "resolution")) for d in gpu)  # the preset's own
    cpu = module.run_overrides(5, "cpu", weights, prior="animatediff", representation="gaussians4d", tiny=True,
                               static_steps=2)
    assert {"prior.dtype=fp32", "motion.image_prior.dtype=fp32", "representation.num_gaussians=256"} <= set(cpu)
    row = module.Row("x", "x", "zeroscope", stage_steps={"static": 500, "motion": 1000},
                     stage_s={"static": 0.1, "motion": 0.5})
    assert row.projected_s == pytest.approx(550.0)


@pytest.mark.slow(seconds=15)
def test_gpu_timing_runs_the_4d_rows_on_the_cpu(tmp_path, capsys, monkeypatch):
    """The CPU form of the timing (what `bench/gpu_check.sh --cpu` runs) times both 4D rows on tiny random-weight
    folders through the real loaders and MotionTrainer: both stages, video steps included. In this process (a
    subprocess would spend most of its time importing torch and diffusers again); CI runs the script itself.
    What the script sets for its whole process (threads, offline flags, library logging) is put back after."""
    import diffusers
    import torch
    import transformers

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # set here, so that monkeypatch undoes them
        monkeypatch.setenv(name, "1")
    threads = torch.get_num_threads()
    loggers = (diffusers.utils.logging, transformers.utils.logging)
    logging_state = [(log.get_verbosity(), log.is_progress_bar_enabled()) for log in loggers]
    try:
        code = gpu_timing().main(["--cpu", "--no-write", "--only", "4d-animatediff", "4d-zeroscope",
                                  "--workdir", str(tmp_path)])  # its cache: DREAMER_CACHE, the suite's own
    finally:
        torch.set_num_threads(threads)  # --cpu times on one thread
        for log, (verbosity, bars) in zip(loggers, logging_state):
            log.set_verbosity(verbosity)
            log.enable_progress_bar() if bars else log.disable_progress_bar()
    out = capsys.readouterr()
    assert code == 0, out.out[-3000:] + out.err[-3000:]
    table = (tmp_path / "gpu-timing.md").read_text()
    for label, prior in (("4d-animatediff", "animatediff + sd15 (frames)"), ("4d-zeroscope",
                                                                             "zeroscope + sd21-base (frames)")):
        line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        assert prior in line and " static / " in line and line.endswith("| ok |"), line
    assert out.out.count("'video_steps': 2") == 2  # steps 2 and 4 of 5 (step 3: the hybrid image step)
    assert not (tmp_path / "models" / "sd15").exists()  # folders go after their last row


def test_ci_and_make_run_the_gpu_check():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index("bench/gpu_check.sh --cpu")
    assert "gpu-check:" in (ROOT / "Makefile").read_text()
