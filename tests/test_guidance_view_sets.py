"""Multi-view distillation: rules on view sets of a multi-view prior (t per set), CFG rescale, refusals."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dreamer import registry
from dreamer.cameras import OrbitConfig, sample_view_sets
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.priors import schedule
from dreamer.priors.tiny.weights import save_weights
from tiny_prior_parts import TINY_MV_UNET, fresh_tiny_mv_prior

S = 16


def _rule(name: str, prior, **overrides):
    config = dataclasses.replace(registry.default_config("guidance", name), **overrides)
    return registry.component_class("guidance", name)(config, prior, 100, torch.Generator().manual_seed(0))


def _set_batch(sets: int = 2):
    cams = sample_view_sets(sets, 4, OrbitConfig(), S, generator=torch.Generator().manual_seed(1))
    images = torch.rand(len(cams), S, S, 3, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    return images, cams


@pytest.mark.parametrize("name", ["sds", "asd", "ism", "tsm"])
def test_rules_run_on_view_sets_with_one_timestep_per_set(name):
    prior = fresh_tiny_mv_prior()
    images, cams = _set_batch()
    out = _rule(name, prior)(images, prior.encode_prompt("a red chair"), cams, step=10)
    out.loss.backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    t = out.t.reshape(2, 4)
    assert torch.equal(t, t[:, :1].expand_as(t))
    if name == "asd":  # the shifted timestep is shared by the set too
        shift = out.extras["t_shift"].reshape(2, 4)
        assert torch.equal(shift, shift[:, :1].expand_as(shift))


def test_a_batch_that_is_not_whole_sets_is_refused():
    prior = fresh_tiny_mv_prior()
    images, cams = _set_batch()
    with pytest.raises(ValueError, match="not whole sets of the prior's 4 views"):
        _rule("sds", prior)(images[:6], prior.encode_prompt("a red chair"), cams[:6], step=0)


def test_cfg_rescale_matches_the_conditional_estimate_std_per_set():
    prior = fresh_tiny_mv_prior()
    ac = prior.alphas_cumprod
    gen = torch.Generator().manual_seed(0)
    x_t, eps_c, eps_u = (torch.randn(8, 3, S, S, generator=gen) for _ in range(3))
    t = torch.full((8,), 700)
    eps_cfg = F.classifier_free_guidance(eps_u, eps_c, 7.5)
    assert F.rescale_cfg(x_t, eps_cfg, eps_c, t, ac, 4, 0.0) is eps_cfg
    rescaled = F.rescale_cfg(x_t, eps_cfg, eps_c, t, ac, 4, 1.0)
    alpha, sigma = schedule.alphas_sigmas(ac, t, 4)
    x0 = lambda e: schedule.x0_from_eps(x_t, e, alpha, sigma).reshape(2, -1)  # noqa: E731
    assert torch.allclose(x0(rescaled).std(dim=1), x0(eps_c).std(dim=1), rtol=1e-4)
    assert not torch.allclose(x0(eps_cfg).std(dim=1), x0(eps_c).std(dim=1), rtol=1e-2)
    half = F.rescale_cfg(x_t, eps_cfg, eps_c, t, ac, 4, 0.5)
    assert torch.allclose(x0(half), 0.5 * (x0(rescaled) + x0(eps_cfg)), atol=1e-4)
    with pytest.raises(UserError, match="cfg_rescale"):
        registry.config_class("guidance", "sds")(cfg_rescale=2.0)


@pytest.fixture
def mv_weights(tmp_path):
    prior = fresh_tiny_mv_prior()
    save_weights(tmp_path / "mv", prior.unet, prior.info)
    return str(tmp_path / "mv")


@pytest.mark.parametrize("rule, extra", [("vsd", []), ("esd", []), ("ism", ["guidance.flip_probability=0.5"])])
def test_rules_that_cannot_take_view_sets_refuse_in_one_line(rule, extra, mv_weights):
    from dreamer.run_config import load_run_config

    dotted = ["prompt=a red cube", f"guidance={rule}", "prior=tiny-mv", f"prior.weights={mv_weights}", *extra]
    with pytest.raises(UserError, match="does not run on view sets") as err:
        load_run_config("default", dotted=dotted).validate()
    assert "\n" not in str(err.value)


def test_trainer_renders_view_sets_for_a_multi_view_prior(tmp_path, mv_weights, tiny_run):
    from dreamer.cli import main

    overrides = [o for o in tiny_run if not o.startswith("prior")] + [f"prior.weights={mv_weights}", "batch_size=2"]
    out = tmp_path / "run"
    assert main(["generate", "a red cube", "--prior", "tiny-mv", "--steps", "2", "--quiet", "--out", str(out),
                 "guidance.cfg_rescale=0.5", *overrides]) == 0
    assert (out / "model.glb").is_file()
    from dreamer.run_config import load_run_config
    from dreamer.trainer.run_folder import RunFolder
    from dreamer.trainer.trainer import Trainer

    config = load_run_config(str(out / "config.yaml"))
    trainer = Trainer(config, RunFolder(tmp_path / "again"))
    cams = trainer.sample_cameras()
    assert len(cams) == 8  # 2 sets × 4 views
    el, d = cams.elevation.reshape(2, 4), cams.distance.reshape(2, 4)
    assert torch.allclose(el, el[:, :1].expand_as(el), atol=1e-3) and torch.allclose(d, d[:, :1].expand_as(d), atol=1e-4)


def test_random_backgrounds_are_one_colour_per_view_set_and_off_by_default(tmp_path, mv_weights, tiny_run):
    from dreamer.errors import UserError
    from dreamer.run_config import RunConfig, load_run_config
    from dreamer.trainer.run_folder import RunFolder
    from dreamer.trainer.trainer import Trainer

    base = [o for o in tiny_run if not o.startswith("prior")] + ["prompt=a white cube", "prior=tiny-mv",
                                                                 f"prior.weights={mv_weights}", "batch_size=2"]
    # off unless a preset turns it on (the default preset does: white objects, issue 27)
    assert RunConfig().trainer.random_background == 0.0
    assert load_run_config("default").trainer.random_background == 1.0
    off = Trainer(load_run_config("default", dotted=base + ["trainer.random_background=0"]), RunFolder(tmp_path / "off"))
    state = off.camera_generator.get_state()
    assert off.distill_background(8) is None and torch.equal(off.camera_generator.get_state(), state)
    on = Trainer(load_run_config("default", dotted=base + ["trainer.random_background=1.0"]), RunFolder(tmp_path / "on"))
    colours = on.distill_background(8)
    assert colours.shape == (8, 1, 1, 3)
    per_set = colours.reshape(2, 4, 3)
    assert torch.equal(per_set, per_set[:, :1].expand_as(per_set)) and not torch.equal(per_set[0], per_set[1])
    out = on.representation.render(on.sample_cameras(), background=colours)
    assert out.rgb.shape[0] == 8
    with pytest.raises(UserError, match="random_background"):
        load_run_config("default", dotted=base + ["trainer.random_background=2"])
    # neutral colours: a grey level per set, black to white
    neutral = Trainer(load_run_config("default", dotted=base + ["trainer.random_background_colours=neutral"]),
                      RunFolder(tmp_path / "neutral")).distill_background(8)
    assert neutral.shape == (8, 1, 1, 3) and torch.equal(neutral, neutral[..., :1].expand_as(neutral))
    assert not torch.equal(neutral[0], neutral[4])
    with pytest.raises(UserError, match="random_background_colours must be one of"):
        load_run_config("default", dotted=base + ["trainer.random_background_colours=pastel"])


def test_neutral_random_backgrounds_draw_one_grey_level_per_set():
    from dreamer.trainer.trainer import random_backgrounds

    grey = random_backgrounds(1.0, 12, 4, torch.Generator().manual_seed(3), "neutral").reshape(3, 4, 3)
    assert torch.equal(grey, grey[:, :1, :1].expand_as(grey))  # one level per set, the same in R, G and B
    assert 0.0 <= float(grey.min()) and float(grey.max()) <= 1.0 and len(grey[:, 0, 0].unique()) == 3
    rgb = random_backgrounds(1.0, 12, 4, torch.Generator().manual_seed(3)).reshape(3, 4, 3)
    assert not torch.equal(rgb[:, 0, 0], rgb[:, 0, 1])  # the default: colours


def test_gaussians_then_mesh_refine_run_with_the_multi_view_prior(tmp_path, mv_weights):
    """The two-stage preset (Gaussians, then a DMTet mesh) on view sets of the multi-view prior."""
    import dreamer

    small = ["resolution=16", "trainer.preview_every=0", "trainer.checkpoint_every=2", "export.mesh_resolution=32",
             "export.texture_size=64", "export.eval_surface_samples=2000", "refine.steps=2", "refine.start_resolution=32",
             "refine.representation.grid_resolution=16", "refine.representation.init_colour_steps=5",
             "representation.num_gaussians=300", "prior=tiny-mv", f"prior.weights={mv_weights}"]
    result = dreamer.generate("a red cube", config="dreamgaussian-sds-tiny", out=tmp_path / "run", steps=2,
                              dotted=small, trainer__progress=False, export__video=False)
    assert result.mesh.is_file() and result.metrics["steps"] == 2
