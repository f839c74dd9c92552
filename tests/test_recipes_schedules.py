"""The paper recipes' schedules and options (issue 21): each test states what the code before it gave.

VSD's t_max held then dropped (threestudio), ISM/TSM's 30 % warm-up with δ_T annealed only during it
(LucidDreamer, Dreamer XL), TSM's δ_T 100 → 80, TSM's per-pixel clip at the prior's input size,
DreamGaussian's deterministic linear timestep, and LucidDreamer's noise offset, depth steps and flip.
"""

from __future__ import annotations

import math

import pytest
import torch

import dreamer.guidance.functional as F
from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.guidance.esd import ESD
from dreamer.guidance.ism import ISM, ISMConfig
from dreamer.guidance.schedules import LinearDescendingTimesteps, Schedule, anneal
from dreamer.guidance.sds import SDS, SDSConfig
from dreamer.guidance.tsm import TSM, TSMConfig
from dreamer.guidance.vsd import VSD, VSDConfig
from dreamer.run_config import load_run_config
from fakes import FakePixelPrior

S, B = 8, 2


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cameras(n: int = B, size: int = S):
    return from_spherical(torch.tensor([0.0, 90.0, 180.0, 270.0][:n]), 10.0, 2.8, 40.0, size)


def _images(seed: int = 1, n: int = B, size: int = S) -> torch.Tensor:
    return torch.rand(n, size, size, 3, generator=_gen(seed)).requires_grad_(True)


def _preset_rule(preset: str, cls, total_steps: int | None = None, prior=None, seed: int = 0):
    """The rule of a preset, built as the trainer does, on a fake 8 px prior (schedules only need T)."""
    run = load_run_config(preset)
    return cls(run.guidance.config, prior or FakePixelPrior(S), total_steps or run.steps, _gen(seed))


# ----------------------------------------------------------------------------- 1. VSD t_max


def test_hold_then_drop_is_a_step_at_its_fraction():
    sched = Schedule.hold_then_drop(0.98, 0.5, 0.2)
    assert [sched(k, 25_000) for k in (0, 4_999, 5_000, 5_001, 25_000)] == [0.98, 0.98, 0.98, 0.5, 0.5]
    assert anneal("hold_then_drop", 0.98, 0.5, 0.2) == sched
    assert anneal("linear", 0.98, 0.5, 0.2) == Schedule.linear(0.98, 0.5, 0.2)
    with pytest.raises(ValueError, match="anneal shape"):
        anneal("cosine", 0.98, 0.5, 0.2)


@pytest.mark.parametrize("preset, rule_class", [("prolificdreamer-vsd", VSD), ("esd", ESD)])
def test_vsd_and_esd_presets_hold_t_max_at_098_then_drop_to_05(preset, rule_class):
    """threestudio's `max_step_percent: [5000, 0.98, 0.5, 5001]`: 0.98 through global_step 5,000, 0.5 from 5,001.

    Before: t_max fell linearly from step 0, so at step 4,999 it was 0.98 − 0.48·4999/5000 ≈ 0.5001
    (bound 500, not 980) and at 2,500 it was 0.74 (740).
    """
    rule = _preset_rule(preset, rule_class)
    assert rule.schedule.bounds(0) == (20, 980)
    assert rule.schedule.bounds(2_500) == (20, 980)
    assert rule.schedule.bounds(4_999) == (20, 980)
    assert rule.schedule.bounds(5_000) == (20, 980)  # threestudio's step 5,000 still has 0.98
    assert rule.schedule.bounds(5_001) == (20, 500)
    assert rule.schedule.bounds(24_999) == (20, 500)
    assert rule.config.t_anneal_shape == "hold_then_drop"


def test_vsd_anneal_shape_is_checked():
    with pytest.raises(UserError, match="t_anneal_shape"):
        VSDConfig(t_anneal_shape="ramp")


# ----------------------------------------------------------------------------- 2. ISM / TSM warm-up and δ_T


def test_lucid_ism_warms_up_over_30_percent_and_holds_delta_t_after():
    """LucidDreamer: 1,500 of 5,000 warm-up steps; δ_T 100 → 80 during them, then 80.

    Before: warm-up 10 % (t's bound already 500 at step 500, 500 at step 750 too) and δ_T annealed
    over the whole run (97 at step 750, 94 at 1,500, 88 at 3,000).
    """
    rule = _preset_rule("lucid-ism", ISM)
    assert [rule.delta_t(k) for k in (0, 750, 1_500, 3_000, 4_999)] == [100, 90, 80, 80, 80]
    assert rule.schedule.bounds(0) == (20, 980)
    assert rule.schedule.bounds(750) == (20, 740)  # half-way through the warm-up: 0.98 − 0.48/2
    assert rule.schedule.bounds(1_400)[1] > 500
    assert rule.schedule.bounds(1_500) == (20, 500)  # warm-up ends
    assert rule.config.warmup == 0.3


@pytest.mark.parametrize("preset, steps", [("lucid-ism-tiny", 800), ("dreamerxl-tsm-tiny", 800)])
def test_tiny_interval_presets_follow_the_same_warm_up(preset, steps):
    """Before: warm-up 0.1 (bound 500 from step 80 of 800) and δ_T over the whole run (250 at the end for TSM)."""
    cls = TSM if "tsm" in preset else ISM
    rule = _preset_rule(preset, cls, steps)
    assert rule.schedule.bounds(120) == (20, 740) and rule.schedule.bounds(240) == (20, 500)
    assert rule.delta_t(120) == 90 and rule.delta_t(240) == 80 and rule.delta_t(steps - 1) == 80


def test_dreamerxl_tsm_delta_t_goes_100_to_80_not_250():
    """Dreamer XL (three of its four configs): δ_T 100 → 80 over the warm-up (750 of 2,500 steps).

    Before: the preset and TSMConfig went 100 → 250 over the whole run (≈ 250 at the last step,
    175 half-way).
    """
    rule = _preset_rule("dreamerxl-tsm", TSM)
    assert rule.config.delta_t_end == 80 and TSMConfig().delta_t_end == 80 and TSMConfig().warmup == 0.3
    assert rule.delta_t(0) == 100 and rule.delta_t(rule.total_steps - 1) == 80
    at_authors_length = _preset_rule("dreamerxl-tsm", TSM, total_steps=2_500)
    assert at_authors_length.delta_t(375) == 90 and at_authors_length.delta_t(750) == 80
    assert at_authors_length.schedule.bounds(750) == (20, 500) and at_authors_length.schedule.bounds(700)[1] > 500


def test_delta_t_anneal_span_can_be_set_apart_from_the_warm_up():
    rule = ISM(ISMConfig(warmup=0.3, delta_t_anneal_by=1.0), FakePixelPrior(S), 100, _gen())
    assert rule.delta_t(30) == 94 and rule.delta_t(100) == 80


# ----------------------------------------------------------------------------- 4. TSM per-pixel clip


@pytest.mark.parametrize("render, bound", [(8, 16.0), (16, 4.0), (32, 1.0), (48, 1.0)])
def test_pixel_clip_at_the_prior_size_bounds_the_render_gradient_by_k_squared(render, bound):
    """The clip acts on the 32 px image the prior encodes; an r px render's pixels each sum k² = (32/r)²
    clipped gradients (bilinear upsample, border pixels included). A constant large gradient therefore
    reaches every render pixel as k²·thr in every channel. Renders at or above the prior's size are
    clipped as they are.

    Before: the clip acted on the render itself, so the bound was thr at every render size.
    """
    thr = 0.05
    x = torch.rand(1, render, render, 3, requires_grad=True)
    y = F.upsample_to(x, 32)
    assert y.shape == (1, max(render, 32), max(render, 32), 3)
    pixels = y.permute(0, 3, 1, 2)
    pixels.register_hook(lambda grad: F.pixelwise_clip(grad, thr))
    (pixels * 10.0).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, bound * thr))


def test_upsample_to_encodes_what_the_prior_would_have():
    prior = FakePixelPrior(16)
    x = torch.rand(2, 8, 8, 3)
    torch.testing.assert_close(prior.encode_images(F.upsample_to(x, 16).permute(0, 3, 1, 2)),
                               prior.encode_images(x.permute(0, 3, 1, 2)), atol=1e-6, rtol=0)


def test_tsm_clip_threshold_at_half_the_prior_size_is_four_times_the_setting():
    """An 8 px render under a 16 px prior (512 under SDXL's 1,024): each render pixel may carry 4·thr.

    Before: at most thr on the render (`test_tsm_pixel_clip_bounds_the_gradient_on_the_render` holds
    that for a render at the prior's size, which is unchanged).
    """
    prior = FakePixelPrior(16)
    emb = prior.encode_prompt("a house")
    images = _images()
    TSM(TSMConfig(pixel_clip=1e-4, grad_scale=100.0), prior, 100, _gen(1))(images, emb, _cameras(), 0).loss.backward()
    peak = images.grad.abs().amax(dim=-1).max()
    assert 3e-4 < peak <= 4e-4 * (1 + 1e-5)  # saturated pixels reach 4·thr (before: ≤ 1e-4)


# ----------------------------------------------------------------------------- 5. DreamGaussian timestep


def test_linear_descending_timesteps_are_deterministic_and_follow_dreamgaussian():
    sched = LinearDescendingTimesteps(1000, 500)
    expected = {0: 980, 9: 980, 10: 978, 249: 500, 250: 498, 489: 20, 499: 20}
    for step, t in expected.items():
        assert sched.bounds(step) == (t, t)
        gen = _gen(step)
        state = gen.get_state()
        assert torch.equal(sched.sample(step, 3, gen), torch.full((3,), t))
        assert torch.equal(gen.get_state(), state)  # nothing drawn


def test_dreamgaussian_preset_uses_the_deterministic_linear_timestep():
    """DreamGaussian: t = round((1 − step/iters)·T) clamped to [20, 980], step counted from 1.

    Before: t ~ U[20, t_max(step)] with t_max falling 980 → 20: at step 249 of 500 a draw from
    U{20 … 510}, different for each sample and seed.
    """
    rule = _preset_rule("dreamgaussian-sds", SDS)
    for seed in (0, 1):
        gen = _gen(seed)
        assert torch.equal(rule.schedule.sample(249, 4, gen), torch.full((4,), 500))
        assert torch.equal(rule.schedule.sample(0, 4, gen), torch.full((4,), 980))
        assert torch.equal(rule.schedule.sample(499, 4, gen), torch.full((4,), 20))
    assert rule.config.t_schedule == "linear_descending"
    prior = FakePixelPrior(S)
    out = SDS(rule.config, prior, 500, _gen(3))(_images(), prior.encode_prompt("a cup"), _cameras(), step=249)
    assert torch.equal(out.t, torch.full((B,), 500))


def test_tiny_dreamgaussian_preset_keeps_the_random_draw_and_linear_needs_no_anneal():
    assert load_run_config("dreamgaussian-sds-tiny").guidance.config.t_schedule == "random"
    with pytest.raises(UserError, match="t_schedule"):
        SDSConfig(t_schedule="sqrt")
    with pytest.raises(UserError, match="t_anneal"):
        SDSConfig(t_schedule="linear_descending", t_anneal=0.5)


# ----------------------------------------------------------------------------- 6. ISM options


def test_lucid_ism_preset_turns_on_the_published_options():
    config = load_run_config("lucid-ism").guidance.config
    assert (config.noise_offset, config.depth_ratio, config.flip_probability) == (0.1, 0.2, 0.5)
    assert config.uses_depth and not ISMConfig().uses_depth and not TSMConfig().uses_depth
    tiny = load_run_config("lucid-ism-tiny").guidance.config
    assert (tiny.noise_offset, tiny.depth_ratio, tiny.flip_probability) == (0.0, 0.0, 0.0)


def _record_first_noising(monkeypatch) -> list[torch.Tensor]:
    """The ε of the inversion's first noising (x_0 = α_0 z + σ_0 ε), one entry per rule call."""
    seen: list[torch.Tensor] = []
    add_noise = F.add_noise

    def spy(z, eps, t, ac):
        if bool((torch.as_tensor(t) == 0).all()):
            seen.append(eps.clone())
        return add_noise(z, eps, t, ac)

    monkeypatch.setattr(F, "add_noise", spy)
    return seen


def test_noise_offset_adds_one_per_channel_offset_shared_by_the_batch(monkeypatch):
    """Before: no offset option; ε was plain N(0, 1)."""
    seen = _record_first_noising(monkeypatch)
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a lamp")
    for offset in (0.0, 0.1):
        rule = ISM(ISMConfig(noise_offset=offset), prior, 100, _gen(4))
        rule(_images(), emb, _cameras(), step=10)
    plain, shifted = seen
    gen = _gen(4)
    rule.schedule.sample(10, B, gen)  # t (the draw order: t, ε, then the offset)
    torch.randn(B, 3, S, S, generator=gen)  # ε
    expected = 0.1 * torch.randn(1, 3, 1, 1, generator=gen)
    torch.testing.assert_close(shifted - plain, expected.expand(B, 3, S, S))


def test_depth_steps_encode_the_depth_and_reach_only_it():
    """Before: no depth option; the render's colour was encoded on every step."""
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a lamp")
    images = _images()
    depth = (2.0 + torch.rand(B, S, S, 1, generator=_gen(5))).requires_grad_(True)
    with torch.no_grad():
        depth[:, :2] = 0.0  # empty rows
    rule = ISM(ISMConfig(depth_ratio=1.0), prior, 100, _gen(6))
    out = rule(images, emb, _cameras(), step=10, depth=depth)
    out.loss.backward()
    assert out.extras["depth_step"] and images.grad is None
    assert depth.grad is not None and float(depth.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="depth"):
        rule(_images(), emb, _cameras(), step=10)


def test_depth_image_is_the_normalised_disparity():
    depth = torch.tensor([[0.0, 2.0], [4.0, 1.0]]).reshape(1, 2, 2, 1)
    image = F.depth_image(depth)
    assert image.shape == (1, 2, 2, 3)
    torch.testing.assert_close(image[0, :, :, 0], torch.tensor([[0.0, 1 / 3], [0.0, 1.0]]))


def test_depth_ratio_sets_the_share_of_depth_steps():
    prior = FakePixelPrior(4)
    emb = prior.encode_prompt("a lamp")
    rule = ISM(ISMConfig(depth_ratio=0.2, stride=1000), prior, 100, _gen(7))
    depth = 1.0 + torch.rand(1, 4, 4, 1, generator=_gen(8))
    steps = [rule(torch.rand(1, 4, 4, 3), emb, _cameras(1, 4), step=50, depth=depth).extras["depth_step"]
             for _ in range(200)]
    assert 0.12 < sum(steps) / len(steps) < 0.28


def test_flip_mirrors_the_whole_batch():
    """With the flip drawn, the gradient is the mirror image of the unflipped rule's on mirrored renders.

    Before: no flip option.
    """
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a lamp")
    images = _images()
    out = ISM(ISMConfig(flip_probability=1.0), prior, 100, _gen(9))(images, emb, _cameras(), step=10)
    out.loss.backward()
    mirrored = images.detach().flip(2).requires_grad_(True)
    never = ISM(ISMConfig(flip_probability=1e-12), prior, 100, _gen(9))  # draws the coin, never flips
    ref = never(mirrored, emb, _cameras(), step=10)
    ref.loss.backward()
    assert out.extras["flipped"] and not ref.extras["flipped"]
    torch.testing.assert_close(images.grad, mirrored.grad.flip(2))
    assert not torch.allclose(images.grad, mirrored.grad)


def test_trainer_passes_depth_to_a_rule_that_declares_it(tmp_path):
    import dreamer

    result = dreamer.generate("a red cube", config="lucid-ism-tiny", out=tmp_path / "run", steps=2,
                              dotted=["resolution=16", "trainer.preview_every=0", "trainer.checkpoint_every=2",
                                      "trainer.log_every=1", "export.mesh_resolution=32", "export.texture_size=64",
                                      "trainer.evaluate=false",  # the eval is not what this test is about
                                      "guidance.depth_ratio=1.0", "guidance.flip_probability=0.5",
                                      "guidance.noise_offset=0.1"],
                              trainer__progress=False, export__video=False)
    assert result.metrics["steps"] == 2 and math.isfinite(result.metrics["final_loss"])
