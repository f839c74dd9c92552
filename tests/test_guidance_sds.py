"""Shared guidance math, timestep schedules and SDS — values asserted, not just shapes."""

from __future__ import annotations

import math

import pytest
import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.schedules import (
    AnnealedTimesteps,
    Schedule,
    SqrtAnnealTimesteps,
    UniformTimesteps,
)
from dreamer.guidance.sds import SDS, SDSConfig
from fakes import FakePixelPrior, sd_alphas_cumprod

S = 8  # image side
B = 3  # batch


@pytest.fixture(scope="module")
def ac() -> torch.Tensor:
    return sd_alphas_cumprod()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cameras(n: int = B):
    # front, side, back views
    return from_spherical(torch.tensor([0.0, 90.0, 180.0][:n]), 10.0, 2.8, 40.0, S)


def _images(seed: int = 1, n: int = B) -> torch.Tensor:
    return torch.rand(n, S, S, 3, generator=_gen(seed)).requires_grad_(True)


# ---------------------------------------------------------------------------- functional


def test_inject_gradient_gives_g_over_batch():
    z = torch.randn(B, 3, S, S, generator=_gen(0), requires_grad=True)
    g = torch.randn(B, 3, S, S, generator=_gen(1))
    loss = F.inject_gradient(z, g)
    loss.backward()
    torch.testing.assert_close(z.grad, g / B, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, 0.5 * g.pow(2).sum() / B)


def test_alphas_sigmas_and_add_noise(ac):
    t = torch.tensor([1, 500, 999])
    a, s = F.alphas_sigmas(ac, t)
    assert a.shape == (3, 1, 1, 1) and s.shape == (3, 1, 1, 1)
    torch.testing.assert_close(a.flatten() ** 2 + s.flatten() ** 2, torch.ones(3))
    torch.testing.assert_close(a.flatten(), ac[t].sqrt())
    z = torch.randn(3, 3, S, S, generator=_gen(0))
    eps = torch.randn(3, 3, S, S, generator=_gen(1))
    x = F.add_noise(z, eps, t, ac)
    expected = ac[t].sqrt()[:, None, None, None] * z + (1 - ac[t]).sqrt()[:, None, None, None] * eps
    torch.testing.assert_close(x, expected)


def test_weights_at_known_t(ac):
    t = torch.tensor([20, 500, 980])
    abar = ac[t].double()
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    expected = {
        "sds": 1 - abar,
        "uniform": torch.ones_like(abar),
        "fantasia": alpha * sigma**2,
        "sigma_over_alpha": sigma / alpha,
    }
    for kind, value in expected.items():
        w = F.weight(t, ac, kind)
        assert w.shape == (3, 1, 1, 1)
        torch.testing.assert_close(w.flatten().double(), value, rtol=1e-6, atol=1e-7)
    # the fake's ᾱ is SD's scaled_linear schedule: β = linspace(√0.00085, √0.012, 1000)²
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(ac.double(), torch.cumprod(1 - betas, 0), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        F.weight(t, ac, "nope")


def test_cfg_conventions():
    eu = torch.randn(2, 3, 4, 4, generator=_gen(0))
    ec = torch.randn(2, 3, 4, 4, generator=_gen(1))
    for s in (0.0, 7.5, 100.0):
        torch.testing.assert_close(F.classifier_free_guidance(eu, ec, s, "plus_one"),
                                   F.classifier_free_guidance(eu, ec, s + 1, "standard"))
    torch.testing.assert_close(F.classifier_free_guidance(eu, ec, 1.0), ec)
    torch.testing.assert_close(F.classifier_free_guidance(eu, ec, 0.0), eu)
    torch.testing.assert_close(F.classifier_free_guidance(eu, ec, 7.5), eu + 7.5 * (ec - eu))
    with pytest.raises(ValueError):
        F.classifier_free_guidance(eu, ec, 1.0, "nope")


def test_chroma_cfg_takes_the_colour_at_its_own_scale_and_keeps_the_grey_part():
    eu = torch.randn(2, 3, 4, 4, generator=_gen(0))
    ec = torch.randn(2, 3, 4, 4, generator=_gen(1))
    full = F.classifier_free_guidance(eu, ec, 5.0)
    assert F.chroma_cfg(full, ec, eu, None) is full
    grey = lambda x: x.mean(dim=1, keepdim=True)  # noqa: E731
    chroma = lambda x: x - grey(x)  # noqa: E731
    for s_c in (0.0, 1.0, 2.5):
        out = F.chroma_cfg(full, ec, eu, s_c)
        torch.testing.assert_close(grey(out), grey(full))  # shape and shading: the full CFG
        torch.testing.assert_close(chroma(out), chroma(eu + s_c * (ec - eu)))  # colour: CFG at s_c
    torch.testing.assert_close(F.chroma_cfg(full, ec, eu, 1.0) - full, chroma(ec) - chroma(full))
    torch.testing.assert_close(F.chroma_cfg(full, ec, eu, 5.0), full)  # s_c = s: plain CFG
    # a grey conditional over a warm unconditional estimate: CFG turns it cyan, chroma CFG at 1 keeps it grey
    warm = torch.tensor([0.2, -0.1, -0.1]).reshape(1, 3, 1, 1).expand(1, 3, 2, 2)
    grey_cond = torch.zeros(1, 3, 2, 2)
    tinted = F.classifier_free_guidance(warm, grey_cond, 5.0)
    assert tinted[0, 0, 0, 0] < tinted[0, 1, 0, 0]  # red below green: the drift
    kept = F.chroma_cfg(tinted, grey_cond, warm, 1.0)
    torch.testing.assert_close(chroma(kept), torch.zeros_like(kept))


def test_sds_chroma_guidance_changes_only_the_colour_part_of_the_gradient():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a mug", "")
    cams = _cameras()
    grads = {}
    for s_c in (None, 1.0):
        images = _images()
        _sds(prior, seed=5, guidance_scale=10.0, chroma_guidance_scale=s_c)(images, emb, cams, step=3).loss.backward()
        grads[s_c] = images.grad
    assert not torch.allclose(grads[None], grads[1.0])
    torch.testing.assert_close(grads[None].mean(-1), grads[1.0].mean(-1), rtol=1e-5, atol=1e-6)  # grey part equal
    with pytest.raises(UserError, match="chroma_guidance_scale"):
        SDSConfig(chroma_guidance_scale=-1.0)


def test_sds_chroma_guidance_refuses_a_latent_prior():
    prior = FakePixelPrior(S)
    prior.latent_shape = (4, S, S)
    with pytest.raises(UserError, match="chroma_guidance_scale needs a prior that denoises RGB pixels"):
        _sds(prior, chroma_guidance_scale=1.0)


def test_ddim_inversion_then_denoising_round_trip(ac):
    ac64 = ac.double()
    x = torch.randn(2, 3, 4, 4, generator=_gen(0), dtype=torch.float64)
    eps = torch.randn(2, 3, 4, 4, generator=_gen(1), dtype=torch.float64)
    a, b = torch.tensor([20, 200]), torch.tensor([220, 800])
    up = F.ddim_step(x, eps, a, b, ac64)  # inversion
    back = F.ddim_step(up, eps, b, a, ac64)  # denoising
    torch.testing.assert_close(back, x, rtol=0, atol=1e-10)
    # a step to the same t is the identity; with the true ε the clean estimate is exact
    torch.testing.assert_close(F.ddim_step(x, eps, 300, 300, ac64), x)
    z = torch.randn(2, 3, 4, 4, generator=_gen(2), dtype=torch.float64)
    xt = F.add_noise(z, eps, a, ac64)
    torch.testing.assert_close(F.ddim_step(xt, eps, a, b, ac64), F.add_noise(z, eps, b, ac64))


def test_nan_guard_and_clips():
    g = torch.tensor([[1.0, float("nan"), -float("inf"), 3.0]])
    clean, count = F.nan_guard(g)
    assert count.item() == 2
    torch.testing.assert_close(clean, torch.tensor([[1.0, 0.0, 0.0, 3.0]]))
    torch.testing.assert_close(F.clip_gradient(torch.tensor([-5.0, 0.5, 5.0]), 1.0), torch.tensor([-1.0, 0.5, 1.0]))

    g = torch.zeros(1, 3, 1, 2)
    g[0, :, 0, 0] = torch.tensor([0.1, -0.02, 0.0])  # max |g| = 0.1 -> scale 0.5
    g[0, :, 0, 1] = torch.tensor([0.01, 0.03, -0.04])  # below threshold -> unchanged
    out = F.pixelwise_clip(g, 0.05)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.05, -0.01, 0.0]))
    torch.testing.assert_close(out[0, :, 0, 1], g[0, :, 0, 1])


def test_batched_cfg_equals_per_sample_loop():
    prior = FakePixelPrior(S, camera_conditioned=True)
    emb = prior.encode_prompt("a red chair", "blurry", view_dependent=True)
    cams = _cameras()
    x = torch.randn(B, 3, S, S, generator=_gen(0))
    t = torch.tensor([30, 400, 900])
    eps_cfg, eps_c, eps_u = F.predict_cfg(prior, x, t, emb, cams, 7.5)
    assert len(prior.calls) == 1 and prior.calls[0]["batch"] == 2 * B and prior.calls[0]["camera"]
    for i, label in enumerate(cams.view_label):
        ci = prior.predict_noise(x[i:i + 1], t[i:i + 1], emb.views[label], cams[i])
        ui = prior.predict_noise(x[i:i + 1], t[i:i + 1], emb.uncond, cams[i])
        torch.testing.assert_close(eps_c[i:i + 1], ci)
        torch.testing.assert_close(eps_u[i:i + 1], ui)
        torch.testing.assert_close(eps_cfg[i:i + 1], ui + 7.5 * (ci - ui))
    # camera-free priors get no camera
    plain = FakePixelPrior(S)
    F.predict_cfg(plain, x, t, emb, cams, 7.5)
    assert plain.calls[-1]["camera"] is False


# ---------------------------------------------------------------------------- schedules


def test_uniform_timesteps_range_and_reproducible():
    sched = UniformTimesteps(1000, 0.02, 0.98)
    t1 = sched.sample(0, 4096, _gen(3))
    t2 = sched.sample(0, 4096, _gen(3))
    assert t1.dtype == torch.long and t1.shape == (4096,)
    assert torch.equal(t1, t2)
    assert t1.min() >= 20 and t1.max() <= 980
    assert t1.min() < 40 and t1.max() > 960  # covers the range
    assert not torch.equal(t1, sched.sample(0, 4096, _gen(4)))
    # clamp to [1, T-1]
    full = UniformTimesteps(1000, 0.0, 1.0).sample(0, 4096, _gen(0))
    assert full.min() >= 1 and full.max() <= 999


def test_schedule_piecewise_linear():
    s = Schedule(((0.0, 0.98), (0.2, 0.5), (1.0, 0.4)))
    assert s(0, 100) == pytest.approx(0.98)
    assert s(10, 100) == pytest.approx(0.74)
    assert s(20, 100) == pytest.approx(0.5)
    assert s(60, 100) == pytest.approx(0.45)
    assert s(500, 100) == pytest.approx(0.4)
    assert Schedule.constant(3.0)(7, 10) == 3.0
    with pytest.raises(ValueError):
        Schedule(((0.5, 1.0), (0.2, 0.0)))


def test_annealed_timesteps_hit_target_at_fraction():
    sched = AnnealedTimesteps(1000, 1000, min_frac=0.02, max_frac=Schedule.linear(0.98, 0.5, end_frac=0.2))
    assert sched.bounds(0) == (20, 980)
    assert sched.bounds(100) == (20, 740)
    assert sched.bounds(200) == (20, 500)
    assert sched.bounds(900) == (20, 500)
    t = sched.sample(200, 2048, _gen(0))
    assert t.max() <= 500 and t.min() >= 20 and t.max() > 480


def test_sqrt_anneal_monotone_from_max():
    sched = SqrtAnnealTimesteps(1000, 100, min_frac=0.02, max_frac=0.98)
    ts = [sched.sample(step, 1, _gen(0)).item() for step in range(0, 101)]
    assert ts[0] == 980 and ts[-1] == 20
    assert all(b <= a for a, b in zip(ts, ts[1:]))
    assert ts[25] == round(1000 * (0.02 + 0.96 * (1 - math.sqrt(0.25))))  # 500
    jit = SqrtAnnealTimesteps(1000, 100, jitter=0.05)
    t1, t2 = jit.sample(50, 64, _gen(1)), jit.sample(50, 64, _gen(1))
    assert torch.equal(t1, t2) and t1.unique().numel() > 1
    centre = round(1000 * jit.center(50))
    assert (t1 - centre).abs().max() <= 51


# ---------------------------------------------------------------------------- SDS


def _sds(prior, seed: int = 0, total_steps: int = 100, **cfg) -> SDS:
    return SDS(SDSConfig(**cfg), prior, total_steps, _gen(seed))


def test_sds_gradient_identity_on_images(ac):
    """images.grad == 2·g/B (encode is 2x−1), with g computed here independently."""
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a mug", "", view_dependent=True)
    cams = _cameras()
    images = _images()
    out = _sds(prior, seed=5, guidance_scale=10.0)(images, emb, cams, step=3)
    out.loss.backward()

    gen = _gen(5)
    t = torch.randint(20, 981, (B,), generator=gen)  # t ~ U{int(0.02T)..int(0.98T)}, drawn first
    eps = torch.randn(B, 3, S, S, generator=gen)  # then ε
    assert torch.equal(out.t, t)
    z = 2 * images.detach().permute(0, 3, 1, 2) - 1
    abar = ac[t][:, None, None, None]
    x_t = abar.sqrt() * z + (1 - abar).sqrt() * eps
    cond = torch.cat([emb.views[v] for v in ("front", "side", "back")])
    with torch.no_grad():
        ec = prior.predict_noise(x_t, t, cond)
        eu = prior.predict_noise(x_t, t, emb.uncond.expand(B, -1))
    g = (1 - abar) * (eu + 10.0 * (ec - eu) - eps)
    torch.testing.assert_close(images.grad, (2 * g / B).permute(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.grad_norm, g.flatten(1).norm(dim=1).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, 0.5 * g.pow(2).sum() / B, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.extras["w"], (1 - abar).flatten())


def test_sds_leaf_z_identity(ac):
    """With encode_images the identity map, ∂loss/∂z = g/B exactly for a leaf z."""

    class IdentityEncode(FakePixelPrior):
        def encode_images(self, rgb):
            return rgb

    prior = IdentityEncode(S)
    emb = prior.encode_prompt("a cube")
    z = torch.randn(B, S, S, 3, generator=_gen(2), requires_grad=True)
    out = _sds(prior, seed=1, view_dependent_prompt=False, weighting="uniform")(z, emb, _cameras(), 0)
    out.loss.backward()
    gen = _gen(1)
    t = torch.randint(20, 981, (B,), generator=gen)
    eps = torch.randn(B, 3, S, S, generator=gen)
    zc = z.detach().permute(0, 3, 1, 2)
    with torch.no_grad():
        x_t = F.add_noise(zc, eps, t, ac)
        eu = prior.predict_noise(x_t, t, emb.uncond.expand(B, -1))
        ec = prior.predict_noise(x_t, t, emb.cond.expand(B, -1))
    g = eu + 100.0 * (ec - eu) - eps
    torch.testing.assert_close(z.grad.permute(0, 3, 1, 2), g / B, rtol=1e-5, atol=1e-5)


def test_sds_deterministic_given_seed():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a snowman", view_dependent=True)
    results = []
    for _ in range(2):
        images = _images()
        out = _sds(prior, seed=11)(images, emb, _cameras(), 7)
        out.loss.backward()
        results.append((out.loss.detach(), images.grad, out.t))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert torch.equal(results[0][2], results[1][2])
    other = _images()
    out = _sds(prior, seed=12)(other, emb, _cameras(), 7)
    assert not torch.equal(out.loss.detach(), results[0][0])


def test_sds_gradient_reaches_only_images():
    prior = FakePixelPrior(S)
    sds = _sds(prior)
    assert sds.trainable_parameters() == []
    assert all(not p.requires_grad for p in prior.parameters())
    images = _images()
    out = sds(images, prior.encode_prompt("a lamp"), _cameras(), 0)
    out.loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())
    assert out.t.dtype == torch.long and out.t.shape == (B,)
    assert out.loss.ndim == 0 and out.grad_norm.ndim == 0


def test_sds_nan_from_prior_is_zeroed():
    prior = FakePixelPrior(S)
    prior.nan_output = True
    images = _images()
    out = _sds(prior)(images, prior.encode_prompt("a tree"), _cameras(), 0)
    out.loss.backward()
    assert out.extras["nonfinite"].item() == 2
    assert torch.isfinite(out.loss) and torch.isfinite(images.grad).all()
    assert images.grad[0, 0, 0, 0] == 0 and images.grad[-1, -1, -1, -1] == 0


def test_sds_grad_clip_and_plus_one():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a house")
    images = _images()
    _sds(prior, grad_clip=0.01)(images, emb, _cameras(), 0).loss.backward()
    assert images.grad.abs().max() <= (2 * 0.01 / B) * (1 + 1e-6)
    a = _sds(prior, seed=3, guidance_scale=7.5, cfg_convention="plus_one")(_images(), emb, _cameras(), 0)
    b = _sds(prior, seed=3, guidance_scale=8.5)(_images(), emb, _cameras(), 0)
    torch.testing.assert_close(a.loss, b.loss)


def test_sds_t_anneal_and_prior_dtype():
    prior = FakePixelPrior(S, dtype=torch.bfloat16)
    sds = _sds(prior, total_steps=100, t_anneal=0.5, t_anneal_by=0.2)
    assert sds.schedule.bounds(0) == (20, 980) and sds.schedule.bounds(20) == (20, 500)
    images = _images()
    out = sds(images, prior.encode_prompt("a dumbbell"), _cameras(), 50)
    assert out.t.max() <= 500
    assert prior.calls[-1]["dtype"] == torch.bfloat16
    assert out.loss.dtype == torch.float32
    out.loss.backward()
    assert images.grad.dtype == torch.float32 and torch.isfinite(images.grad).all()


def test_sds_config_validation():
    for bad in ({"cfg_convention": "s+1"}, {"weighting": "sqrt"}, {"t_min": 0.9, "t_max": 0.1},
                {"grad_clip": 0.0}, {"t_anneal": 0.01}):
        with pytest.raises(UserError):
            SDSConfig(**bad)


def test_guidance_public_api():
    import dreamer.guidance as G

    for name in G.__all__:
        assert hasattr(G, name), name
    assert {"SDS", "SDSConfig", "Guidance", "GuidanceOutput"} <= set(G.__all__)
