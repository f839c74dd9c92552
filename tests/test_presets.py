"""Every preset in configs/ loads, and runs 2 steps at tiny size (real-prior presets on tiny
random Stable Diffusion parts saved in diffusers' layout) through to its exported mesh. The runs skip
the evaluation (a third of their time): it does not depend on the preset, and the end-to-end tests of
the CLI, the representations and the UI run it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dreamer import registry
from dreamer.run_config import load_run_config

pytestmark = pytest.mark.slow(seconds=25)  # many end-to-end runs: scheduled early (tests/conftest.py)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
SD_PRESETS = [name for name in PRESETS if load_run_config(name).prior.name in ("sd15", "sd21", "sd21-base")]
SMALL = ["resolution=16", "trainer.preview_every=0", "trainer.checkpoint_every=2", "trainer.log_every=1",
         "export.mesh_resolution=32", "export.texture_size=64",
         "export.eval_surface_samples=2000"]


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
                              trainer__progress=False, trainer__evaluate=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.is_file() and math.isfinite(result.metrics["final_loss"])


TINY_PRESETS = [name for name in PRESETS if load_run_config(name).prior.name in ("tiny", "tiny-mv", "tiny-3d")]


def test_every_rule_has_a_cpu_preset_on_the_tiny_prior():
    rules = {load_run_config(name).guidance.name for name in TINY_PRESETS if load_run_config(name).prior.name == "tiny"}
    assert rules == {"sds", "vsd", "esd", "ism", "tsm", "asd"}
    assert load_run_config("mvdream-sds-tiny").prior.name == "tiny-mv"
    assert (load_run_config("default").prior.name, load_run_config("sds-tiny").prior.name) == ("tiny-3d", "tiny")


def test_presets_table_names_rule_representation_prior_and_needs(capsys):
    from dreamer.cli import main

    assert main(["presets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == set(PRESETS)
    assert lines["mvdream-sds-tiny"].split()[1:4] == ["sds", "nerf", "tiny-mv"]
    assert lines["mvdream-sds-tiny"].endswith("nothing (runs on a CPU)")
    assert lines["default"].split()[1:4] == ["sds", "nerf", "tiny-3d"]
    assert lines["default"].endswith("nothing (runs on a CPU)")
    assert lines["dreamfusion-sd"].split()[1:4] == ["sds", "nerf", "sd21-base"]
    assert lines["dreamfusion-sd"].endswith("downloaded weights, GPU")
    assert "tiny-motion + tiny-3d (frames)" in lines["4d"] and lines["4d"].endswith("nothing (runs on a CPU)")
    assert "reference-video + reference (frames)" in lines["4d-oracle"]
    assert lines["4d-animatediff"].endswith("downloaded weights, GPU")


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_tiny_prior_presets_run_two_steps(name, tmp_path):
    import dreamer

    result = dreamer.generate("a red cube", config=name, out=tmp_path / name, steps=2, dotted=_small(name),
                              trainer__progress=False, trainer__evaluate=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.is_file() and math.isfinite(result.metrics["final_loss"])


# ----------------------------------------------------------------------------- 4D presets (issue 22)
VIDEO_PRESETS = [name for name in PRESETS if load_run_config(name).is_4d]
TINY_4D = [*SMALL, "representation.num_gaussians=200", "motion.static_steps=1", "motion.image_every=2",
           "motion.export_frames=3", "motion.video_resolution=16", "prior.num_frames=3", "prior.image_size=16",
           "motion.image_prior.image_size=16", "prior.dtype=fp32", "motion.image_prior.dtype=fp32"]


def test_the_4d_presets():
    assert set(VIDEO_PRESETS) == {"4d", "4d-oracle", "4d-animatediff", "4d-zeroscope"}
    for name, prior, image_prior in (("4d", "tiny-motion", "tiny-3d"), ("4d-oracle", "reference-video", "reference"),
                                     ("4d-animatediff", "animatediff", "sd15"), ("4d-zeroscope", "zeroscope", "sd21-base")):
        preset = load_run_config(name)
        assert (preset.prior.name, preset.motion.component("prior").name) == (prior, image_prior)
        assert preset.representation.name == "gaussians4d" and preset.guidance.name == "video-sds"
        # motion-averse (4D-fy); tiny-motion's unconditional branch is the empty prompt it was trained with
        assert ("static" in preset.negative_prompt) != (name == "4d")
        assert 0 < preset.motion.static_steps < preset.steps
    for name in ("4d", "4d-oracle"):  # no oracle in 4d; only the oracle's prompt score chooses whole turns per loop
        preset = load_run_config(name)
        assert preset.motion.spin_turns == ((0.0,) if name == "4d" else (0.0, 1.0, -1.0))
        exact = [registry.component_class("prior", n).exact for n in (preset.prior.name,
                                                                        preset.motion.component("prior").name)]
        assert exact == ([False, False] if name == "4d" else [True, True])


@pytest.mark.parametrize("name", ["4d-animatediff", "4d-zeroscope"])
def test_real_4d_presets_run_on_tiny_parts(name, tiny_sd_folder, adapter_folder, zeroscope_folder, tmp_path):
    """Both stages (an SD image step, then video steps) through the real loading code of both priors."""
    import dreamer

    weights = ([f"prior.model={tiny_sd_folder}", f"prior.motion_adapter={adapter_folder}"] if name == "4d-animatediff"
               else [f"prior.model={zeroscope_folder}"])
    result = dreamer.generate("a corgi running", config=name, out=tmp_path / name, steps=3,
                              dotted=[*TINY_4D, *weights, f"motion.image_prior.model={tiny_sd_folder}",
                                      "export.video_frames=3", "export.video_resolution=16"],
                              trainer__progress=False, trainer__evaluate=False)
    assert result.metrics["steps"] == 3 and math.isfinite(result.metrics["final_loss"])
    assert result.mesh.is_file() and result.motion_video is not None and (result.run_dir / "frames").is_dir()


def test_missing_image_prior_weights_name_the_4d_option(tiny_sd_folder, adapter_folder, tmp_path):
    """A 4D run's image prior sits under motion.image_prior: its missing-weights error says so."""
    import dreamer
    from dreamer.errors import UserError

    with pytest.raises(UserError) as err:
        dreamer.generate("a corgi running", config="4d-animatediff", out=tmp_path / "run", steps=3,
                         dotted=[*TINY_4D, f"prior.model={tiny_sd_folder}", f"prior.motion_adapter={adapter_folder}",
                                 f"motion.image_prior.model={tmp_path / 'no-such-sd15'}"], trainer__progress=False)
    message = str(err.value)
    assert "motion.image_prior.model=" in message and " prior.model=" not in message and "\n" not in message
