"""Every preset in configs/ loads, and runs 2 steps at tiny size (real-prior presets on tiny
random Stable Diffusion parts saved in diffusers' layout)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dreamer.run_config import load_run_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
SD_PRESETS = [name for name in PRESETS if load_run_config(name).prior.name in ("sd15", "sd21", "sd21-base")]
SMALL = ["resolution=16", "trainer.preview_every=0", "trainer.checkpoint_every=2", "trainer.log_every=1",
         "export.mesh_resolution=32"]


def test_every_preset_loads_with_its_rule():
    assert {"default", "reference", "prolificdreamer-vsd", "esd", "lucid-ism", "dreamerxl-tsm",
            "scaledreamer-asd"} <= set(PRESETS)
    names = {name: load_run_config(name).guidance.name for name in PRESETS}
    assert names["prolificdreamer-vsd"] == "vsd" and names["esd"] == "esd" and names["lucid-ism"] == "ism"
    assert names["dreamerxl-tsm"] == "tsm" and names["scaledreamer-asd"] == "asd"
    assert load_run_config("esd").guidance.config.entropy_weight == 0.5
    for name in ("dreamgaussian-sds", "dreamgaussian-sds-tiny"):  # Gaussians, then a mesh refine stage
        preset = load_run_config(name)
        assert preset.representation.name == "gaussians" and preset.refine.steps > 0
        assert preset.refine.representation["name"] == "mesh"


def _small(name: str) -> list[str]:
    """SMALL, plus a 2-step refine stage on a small grid for two-stage presets."""
    if not load_run_config(name).refine.steps:
        return SMALL
    return [*SMALL, "refine.steps=2", "refine.start_resolution=32", "refine.representation.grid_resolution=16",
            "refine.representation.init_colour_steps=5"]


@pytest.mark.parametrize("name", SD_PRESETS)
def test_real_prior_presets_run_two_steps_on_tiny_sd_parts(name, tiny_sd_folder, tmp_path):  # conftest.py
    import dreamer

    result = dreamer.generate("a red cube", config=name, out=tmp_path / name, steps=2,
                              dotted=[*_small(name), f"prior.model={tiny_sd_folder}"],
                              trainer__progress=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.is_file() and math.isfinite(result.metrics["final_loss"])


TINY_PRESETS = [name for name in PRESETS if load_run_config(name).prior.name == "tiny"]


def test_every_rule_has_a_cpu_preset_on_the_tiny_prior():
    rules = {load_run_config(name).guidance.name for name in TINY_PRESETS}
    assert rules == {"sds", "vsd", "esd", "ism", "tsm", "asd"}


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_tiny_prior_presets_run_two_steps(name, tmp_path):
    import dreamer

    result = dreamer.generate("a red cube", config=name, out=tmp_path / name, steps=2, dotted=_small(name),
                              trainer__progress=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.is_file() and math.isfinite(result.metrics["final_loss"])
