"""The guidance contract every rule passes, and what makes ASD, ISM and TSM different."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from dreamer import registry
from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.asd import ASD, ASDConfig
from dreamer.guidance.inversion import invert
from dreamer.guidance.ism import ISM, ISMConfig
from dreamer.guidance.tsm import TSM, TSMConfig
from dreamer.priors.base import PromptEmbedding
from dreamer.priors.reference import ReferencePrior, ReferencePriorConfig
from dreamer.run_config import build_run_config
from fakes import FakePixelPrior
from tiny_prior_parts import fresh_tiny_prior

S, B = 8, 2
# every registered rule that runs on images (the per-rule contract: tests/test_contracts.py; clips: test_guidance_clips.py)
RULES = sorted(name for name in registry.GUIDANCES if registry.default_config("guidance", name).takes_images)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cameras(n: int = B):
    return from_spherical(torch.tensor([0.0, 90.0, 180.0][:n]), 10.0, 2.8, 40.0, S)


def _images(seed: int = 1, n: int = B) -> torch.Tensor:
    return torch.rand(n, S, S, 3, generator=_gen(seed)).requires_grad_(True)


def _rule(name: str, prior, seed: int = 0, total_steps: int = 100, **overrides):
    config = registry.default_config("guidance", name)
    config = dataclasses.replace(config, **overrides)
    return registry.component_class("guidance", name)(config, prior, total_steps, _gen(seed))


def _trains_a_particle(name: str) -> bool:
    return bool(_rule(name, FakePixelPrior(S), total_steps=1).trainable_parameters())


PARTICLE_RULES = [name for name in RULES if _trains_a_particle(name)]  # VSD, ESD: a LoRA / residual particle
DIRECT_RULES = [name for name in RULES if name not in PARTICLE_RULES]  # SDS, ASD, ISM, TSM


# ------------------------------------------------------------------------------- contract


# The guidance contract itself (finite loss, gradient only on the render, trainable_parameters,
# determinism) is checked over every registered rule in tests/test_contracts.py.


@pytest.mark.parametrize("name", RULES)
def test_contract_config_round_trips_through_the_run_config(name):
    config = registry.default_config("guidance", name)
    changed = dataclasses.replace(config, guidance_scale=3.0)
    run = build_run_config({"guidance": {"name": name, **dataclasses.asdict(changed)}})
    assert run.guidance.name == name and run.guidance.config == changed
    again = build_run_config(run.to_dict())
    assert again.guidance.config == changed


def _one_reference_prior():
    """Exact denoiser of one binary target image (set 0) against a grey image (set 1: the negative/empty prompt)."""
    target = (torch.rand(1, 3, S, S, generator=_gen(7)) > 0.5).float()
    prior = ReferencePrior.from_references(target, None, ReferencePriorConfig(image_size=S, camera_aware=False))
    prior.register_references(torch.full((1, 3, S, S), 0.5))
    index = lambda i: torch.tensor([[i]], dtype=torch.long)  # noqa: E731
    emb = PromptEmbedding("target", "", cond=index(0), uncond=index(1), empty=index(1))
    return prior, emb, target


def _drive(rule, emb, target, steps: int, particle_lr: float | None = None) -> tuple[float, float]:
    """Optimise a grey 2-D image with the rule (Adam, clamped to [0, 1]); mean |image − target| before and after."""
    image = torch.full((1, S, S, 3), 0.5).add_(0.05 * torch.randn(1, S, S, 3, generator=_gen(1))).requires_grad_(True)
    groups = [{"params": [image], "lr": 0.03}]
    if particle_lr is not None:
        groups.append({"params": rule.trainable_parameters(), "lr": particle_lr})
    opt = torch.optim.Adam(groups)
    goal = target.permute(0, 2, 3, 1)
    start = float((image.detach() - goal).abs().mean())
    for step in range(steps):
        opt.zero_grad()
        rule(image, emb, _cameras(1), step).loss.backward()
        opt.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    return start, float((image.detach() - goal).abs().mean())


@pytest.mark.parametrize("name", DIRECT_RULES)  # the particle rules: test_particle_rules_on_the_reference_prior_…
def test_contract_rule_drives_an_image_towards_the_single_reference(name):
    prior, emb, target = _one_reference_prior()
    steps = 80
    rule = _rule(name, prior, seed=0, total_steps=steps, guidance_scale=1.0, view_dependent_prompt=False)
    start, end = _drive(rule, emb, target, steps)
    assert end < 0.3 * start, (start, end)


# ------------------------------------------------------------------------------- ASD


def test_asd_with_eta_zero_leaves_only_the_classifier_score_term():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a mug")
    images = _images()
    rule = _rule("asd", prior, seed=5, eta=0.0, guidance_scale=7.5, view_dependent_prompt=False)
    out = rule(images, emb, _cameras(), step=0)
    out.loss.backward()
    gen = _gen(5)
    t = torch.randint(500, 981, (B,), generator=gen)  # U[0.5, 0.98]·T at step 0
    eps = torch.randn(B, 3, S, S, generator=gen)
    assert torch.equal(out.t, t) and torch.equal(out.extras["t_shift"], t)
    z = 2 * images.detach().permute(0, 3, 1, 2) - 1
    x_t = F.add_noise(z, eps, t, prior.alphas_cumprod)
    with torch.no_grad():
        ec = prior.predict_noise(x_t, t, emb.cond.expand(B, -1))
        eu = prior.predict_noise(x_t, t, emb.uncond.expand(B, -1))
    w = F.weight(t, prior.alphas_cumprod, "sds")
    g = w * 6.5 * (ec - eu)
    torch.testing.assert_close(images.grad, (2 * g / B).permute(0, 2, 3, 1), rtol=1e-4, atol=1e-6)


def test_asd_shift_is_noisier_bounded_and_annealed():
    prior = FakePixelPrior(S)
    rule = ASD(ASDConfig(eta=0.5), prior, 100, _gen(0))
    t = torch.tensor([500, 600, 990])
    shifted = rule.shifted_timesteps(t, 0, torch.tensor([0.0, 0.99, 0.99], dtype=torch.float64))
    # t_min = 500 at step 0; near the end Δ is capped at T − 1 − t before u: 990 + ⌊0.99·min(245, 9)⌋
    assert shifted.tolist() == [500, 600 + math.floor(0.99 * 0.5 * 100), 998]
    assert rule.schedule.bounds(0) == (500, 980) and rule.schedule.bounds(100) == (20, 500)
    with pytest.raises(UserError, match="asd.eta"):
        ASDConfig(eta=-1)


# ------------------------------------------------------------------------------- ISM / TSM


def test_inversion_inverts_a_ddim_step_within_tolerance():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("").cond.expand(B, -1)
    z = 2 * torch.rand(B, 3, S, S, generator=_gen(3)) - 1
    eps = torch.randn(B, 3, S, S, generator=_gen(4))
    x0 = F.add_noise(z, eps, torch.zeros(B, dtype=torch.long), prior.alphas_cumprod)
    errors = []
    for s in (5, 20):
        inv = invert(prior, z, eps, torch.full((B,), s), stride=s, empty=emb, cameras=None)
        back = F.ddim_step(inv.x_s, inv.eps_s, s, 0, prior.alphas_cumprod)  # denoise with the prediction at s
        errors.append(float((back - x0).abs().max()))
    assert errors[0] < 0.015 and errors[0] < errors[1] / 2, errors  # the mismatch of ε̂ between 0 and s shrinks with s

    class ConstantNoise(FakePixelPrior):  # ε̂ independent of x and t: DDIM inversion is exactly invertible
        def predict_noise(self, x_t, t, embedding, camera=None):
            return torch.ones_like(x_t) * 0.3

    const = ConstantNoise(S)
    inv = invert(const, z, eps, torch.full((B,), 300), stride=100, empty=emb, cameras=None)
    torch.testing.assert_close(F.ddim_step(inv.x_s, inv.eps_s, 300, 0, const.alphas_cumprod), x0, atol=1e-5, rtol=0)
    strided = invert(prior, z, eps, torch.tensor([450, 100]), stride=200, empty=emb, cameras=None)
    assert strided.calls == math.ceil(450 / 200) + 1


def test_ism_target_is_the_inversion_prediction_and_uses_delta_t():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a lamp", "ugly")
    images = _images()
    rule = ISM(ISMConfig(warmup=0.0, view_dependent_prompt=False), prior, 100, _gen(2))
    assert rule.delta_t(0) == 100 and rule.delta_t(100) == 80 and rule.schedule.bounds(0) == (20, 500)
    out = rule(images, emb, _cameras(), step=0)
    out.loss.backward()
    gen = _gen(2)
    t = torch.randint(20, 501, (B,), generator=gen)
    eps = torch.randn(B, 3, S, S, generator=gen)
    s = (t - 100).clamp_min(0)
    assert torch.equal(out.extras["s"], s)
    z = 2 * images.detach().permute(0, 3, 1, 2) - 1
    empty = emb.empty.expand(B, -1)
    inv = invert(prior, z, eps, s, 200, empty, None)
    ac = prior.alphas_cumprod
    x_t = F.ddim_step(inv.x_s, inv.eps_s, s, t, ac)
    with torch.no_grad():
        ec = prior.predict_noise(x_t, t, emb.cond.expand(B, -1))
        eu = prior.predict_noise(x_t, t, emb.uncond.expand(B, -1))  # the teacher's uncond: the negative prompt
    g = 0.1 * F.weight(t, ac, "sigma_over_alpha") * (eu + 7.5 * (ec - eu) - inv.eps_s)
    torch.testing.assert_close(images.grad, (2 * g / B).permute(0, 2, 3, 1), rtol=1e-4, atol=1e-6)


def test_tsm_at_gamma_one_is_ism():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a tree")
    grads = []
    for rule in (ISM(ISMConfig(delta_t_end=TSMConfig().delta_t_end), prior, 100, _gen(9)),
                 TSM(TSMConfig(gamma=1.0, pixel_clip=None), prior, 100, _gen(9))):
        images = _images()
        rule(images, emb, _cameras(), step=50).loss.backward()
        grads.append(images.grad)
    torch.testing.assert_close(grads[0], grads[1])
    images = _images()
    out = TSM(TSMConfig(gamma=0.3, pixel_clip=None), prior, 100, _gen(9))(images, emb, _cameras(), step=50)
    s, t = out.extras["s"], out.t
    expected_mu = s + ((t - s).double() * math.sqrt(1 - 0.09)).round().long()
    assert torch.equal(out.extras["mu"], expected_mu) and bool((expected_mu < t).all())


def test_tsm_pixel_clip_bounds_the_gradient_on_the_render():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a house")
    images = _images()
    TSM(TSMConfig(pixel_clip=1e-4, grad_scale=100.0), prior, 100, _gen(1))(images, emb, _cameras(), 0).loss.backward()
    assert images.grad.abs().amax(dim=-1).max() <= 1e-4 * (1 + 1e-5)


@pytest.mark.parametrize("bad", [{"gamma": 1.5}, {"stride": 0}, {"pixel_clip": 0.0}, {"t_min": 0.6, "t_max": 0.5}])
def test_interval_rule_configs_reject_bad_values(bad):
    with pytest.raises(UserError, match="tsm"):
        TSMConfig(**bad)


# ------------------------------------------------------------------------------- VSD / ESD


def _network_prior():
    """A fresh 16 px tiny-prior UNet (a diffusers UNet2DConditionModel, v-prediction, camera input)."""
    return fresh_tiny_prior(seed=0)


def _text(prior, prompt="a red chair"):
    return prior.encode_prompt(prompt)


def _images16(seed: int = 1, n: int = B) -> torch.Tensor:
    return torch.rand(n, 16, 16, 3, generator=_gen(seed)).requires_grad_(True)


@pytest.mark.parametrize("name", PARTICLE_RULES)
def test_particle_rules_contract(name):
    prior = _network_prior()
    emb = _text(prior)
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 42.5, 16)
    runs = []
    for seed in (3, 3, 4):
        images = _images16()
        rule = _rule(name, prior, seed=seed)
        params = rule.trainable_parameters()
        assert params and all(p.requires_grad for p in params)
        assert type(rule.particle).__name__ == "ParticleModel"
        out = rule(images, emb, cams, step=10)
        out.loss.backward()
        assert torch.isfinite(out.loss) and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
        assert all(p.grad is None for p in prior.parameters())  # the frozen prior gets nothing
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)  # the particle model trains
        state = rule.checkpoint_state()
        assert set(state) == {k for k, p in rule.named_parameters() if p.requires_grad}
        assert not any(k.startswith("prior.") for k in state)
        runs.append((out.loss.detach(), images.grad.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])


def test_particle_model_starts_as_the_prior_and_learns():
    from dreamer.guidance.particle import ParticleModel

    prior = _network_prior()
    particle = ParticleModel(prior, rank=4)
    x = torch.randn(B, 3, 16, 16, generator=_gen(0))
    t = torch.tensor([100, 700])
    text = _text(prior).conditional(None, B)
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 42.5, 16)
    for camera in (cams, None):
        with torch.no_grad():
            torch.testing.assert_close(particle.predict_eps(x, t, text, camera), prior.predict_noise(x, t, text, camera),
                                       atol=1e-5, rtol=1e-5)
    rule = _rule("vsd", prior, seed=0, lora_lr=1e-2)
    opt = torch.optim.Adam(rule.trainable_parameters(), lr=1e-2)
    z = torch.rand(B, 16, 16, 3, generator=_gen(2)).permute(0, 3, 1, 2) * 2 - 1

    def held_out_loss() -> float:  # the same τ, noise and dropout draws every time
        rule.generator = _gen(123)
        with torch.no_grad():
            return sum(float(rule.particle_loss(z, text, cams)) for _ in range(8))

    before = held_out_loss()
    rule.generator = _gen(0)
    for _ in range(60):
        opt.zero_grad()
        rule.particle_loss(z, text, cams).backward()
        opt.step()
    after = held_out_loss()
    assert after < 0.9 * before, (before, after)  # fixed evaluation draws: the decrease is not noise


def test_esd_at_lambda_zero_is_vsd_and_differs_otherwise():
    prior = _network_prior()
    emb = _text(prior)
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 42.5, 16)
    grads = {}
    for name, lam in (("vsd", 0.0), ("esd0", 0.0), ("esd", 0.5)):
        torch.manual_seed(0)
        rule = _rule("esd" if name.startswith("esd") else "vsd", prior, seed=5, entropy_weight=lam)
        with torch.no_grad():  # make the camera matter, so that the camera-free branch differs
            rule.particle.camera_embedding.net[2].weight.normal_(0, 0.5)
        images = _images16()
        rule(images, emb, cams, step=0).loss.backward()
        grads[name] = images.grad
    torch.testing.assert_close(grads["vsd"], grads["esd0"])
    assert not torch.allclose(grads["vsd"], grads["esd"])


@pytest.mark.parametrize("name", PARTICLE_RULES)
def test_particle_rules_on_the_reference_prior_use_a_residual_particle_and_drive_towards_the_reference(name):
    from dreamer.guidance.particle import ResidualParticle

    prior, emb, target = _one_reference_prior()
    steps = 80
    # at CFG 1 the particle starts equal to the prior and g = 0 until it has learned the renders;
    # VSD's usual CFG 7.5 pushes along ε_c − ε_u (towards the reference, away from the grey set) from the start
    rule = _rule(name, prior, seed=0, total_steps=steps, guidance_scale=7.5, view_dependent_prompt=False)
    assert isinstance(rule.particle, ResidualParticle)
    x = torch.randn(1, 3, S, S, generator=_gen(0))
    t = torch.tensor([300])
    with torch.no_grad():  # equal to the prior at the start
        torch.testing.assert_close(rule.particle.predict_eps(x, t, emb.cond, None), prior.predict_noise(x, t, emb.cond))
    start, end = _drive(rule, emb, target, steps, particle_lr=1e-2)
    assert end < 0.3 * start, (start, end)
