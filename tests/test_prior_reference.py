"""The `reference` prior: exact denoiser math, noise scale, camera weighting, prompts, cache."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import dreamer.shapes as shapes
from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.priors import reference as ref_mod
from dreamer.priors import reference_cache
from dreamer.priors.base import Prior
from dreamer.priors.schedule import make_alphas_cumprod
from dreamer.shapes.fingerprint import cache_key
from dreamer.priors.exact_mixture import exact_denoise
from dreamer.priors.reference import ReferencePrior, ReferencePriorConfig
from dreamer.priors.reference_orbit import reference_orbit

S = 16


def _synthetic_images(n: int, size: int = S, seed: int = 0) -> torch.Tensor:
    """n smooth, clearly distinct RGB images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def _noisy(prior: ReferencePrior, z0: torch.Tensor, t: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(z0.shape, generator=g)
    abar = prior.alphas_cumprod[t]
    x_t = abar.sqrt() * z0 + (1 - abar).sqrt() * eps
    return x_t, eps, abar.sqrt(), (1 - abar).sqrt()


@pytest.fixture(scope="module")
def synthetic():
    images = _synthetic_images(6)
    dirs = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    prior = ReferencePrior.from_references(images, dirs, ReferencePriorConfig(image_size=S))
    return prior, images


def test_is_a_prior_with_linear_schedule():
    prior = ReferencePrior(ReferencePriorConfig(image_size=S))
    assert isinstance(prior, Prior)
    assert prior.latent_shape == (3, S, S) and prior.image_size == S
    assert prior.num_train_timesteps == 1000 and prior.camera_conditioned
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    expected = torch.tensor([math.prod(1 - b for b in betas[: i + 1].tolist()) for i in (0, 499, 999)], dtype=torch.float64)
    assert torch.allclose(prior.alphas_cumprod[[0, 499, 999]].double(), expected, rtol=1e-5)
    assert make_alphas_cumprod(1000, "scaled_linear")[-1] == pytest.approx(0.0047, rel=0.02)  # SD's ᾱ_T
    assert not ReferencePrior(ReferencePriorConfig(image_size=S, camera_aware=False)).camera_conditioned


def test_exact_denoise_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    refs, x = torch.randn(5, 48, generator=g), torch.randn(3, 48, generator=g)
    alpha, sigma = torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.3, 0.8, 1.0])
    log_w = torch.randn(3, 5, generator=g)
    fast = exact_denoise(x, alpha, sigma, refs, log_w)
    for b in range(3):
        d2 = torch.stack([((x[b].double() - alpha[b].double() * y.double()) ** 2).sum() for y in refs])
        w = torch.softmax(-d2 / (2 * sigma[b].double() ** 2) + log_w[b].double(), dim=0)
        slow = sum(w[i] * refs[i].double() for i in range(5))
        assert torch.allclose(fast[b], slow, atol=1e-10)


def test_small_noise_x0_is_nearest_reference(synthetic):
    prior, images = synthetic
    z0 = prior.encode_images(images)
    for t in (0, 1, 10):
        x_t, _, alpha, sigma = _noisy(prior, z0, t)
        eps_hat = prior.predict_noise(x_t, torch.full((6,), t), torch.zeros(6, 1, dtype=torch.long))
        x0_hat = (x_t - sigma * eps_hat) / alpha
        assert (x0_hat - z0).abs().max() < 1e-3, t


def test_noise_scale_large_and_small_t(synthetic):
    prior, images = synthetic
    z0 = prior.encode_images(images[:4])
    emb = torch.zeros(4, dtype=torch.long)  # [B] form
    for t in (999, 900):
        x_t, eps, _, _ = _noisy(prior, z0, t, seed=2)
        eps_hat = prior.predict_noise(x_t, torch.full((4,), t), emb)
        assert 0.8 < float(eps_hat.std()) < 1.2, (t, float(eps_hat.std()))
    x_t, eps, _, _ = _noisy(prior, z0, 1, seed=2)
    eps_hat = prior.predict_noise(x_t, torch.tensor(1), emb)  # scalar t broadcasts
    cos = torch.nn.functional.cosine_similarity(eps_hat.flatten(1), eps.flatten(1), dim=1)
    assert float(cos.min()) > 0.99


def test_camera_weighting_prefers_nearest_camera():
    y = _synthetic_images(1)[0]
    images = torch.stack([y, 1 - y])  # z = ±c: x_t = 0 is equally far from both
    cam = from_spherical([30.0], [20.0], 2.8, 42.5, S)
    near = cam.position[0]
    dirs = torch.stack([near, -near])
    config = ReferencePriorConfig(image_size=S, camera_temperature=15.0)
    prior = ReferencePrior.from_references(images, dirs, config)
    z = prior.encode_images(images)
    x_t = torch.zeros(1, 3, S, S)
    emb, t = torch.zeros(1, 1, dtype=torch.long), torch.tensor([500])
    x0_free = prior.predict_x0(x_t, t, emb, camera=None)
    assert x0_free.abs().max() < 1e-5  # tie without a camera
    x0_cam = prior.predict_x0(x_t, t, emb, camera=cam)
    assert (x0_cam - z[0]).abs().max() < 1e-4  # the reference seen from this camera wins
    # Swapped camera prefers the other one; camera_aware=False ignores the camera.
    x0_back = prior.predict_x0(x_t, t, emb, camera=from_spherical([210.0], [-20.0], 2.8, 42.5, S))
    assert (x0_back - z[1]).abs().max() < 1e-4
    blind = ReferencePrior.from_references(images, dirs, ReferencePriorConfig(image_size=S, camera_aware=False))
    assert blind.predict_x0(x_t, t, emb, camera=cam).abs().max() < 1e-5
    # Cameras tile over a doubled batch (CFG's cat([x, x])).
    eps2 = prior.predict_noise(x_t.repeat(2, 1, 1, 1), t.repeat(2), emb.repeat(2, 1), camera=cam)
    assert torch.allclose(eps2[0], eps2[1])


def test_camera_weight_is_gaussian_in_angle():
    y = _synthetic_images(1)[0]
    images = torch.stack([y, 1 - y])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # 0° and 90° azimuth
    tau = 30.0
    prior = ReferencePrior.from_references(images, dirs, ReferencePriorConfig(image_size=S, camera_temperature=tau))
    cam = from_spherical([30.0], [0.0], 2.8, 42.5, S)  # 30° from the first, 60° from the second
    x0 = prior.predict_x0(torch.zeros(1, 3, S, S), torch.tensor([500]), torch.zeros(1, dtype=torch.long), cam)
    w0 = 1 / (1 + math.exp(-(60.0**2 - 30.0**2) / (2 * tau**2)))
    z = prior.encode_images(images)
    assert torch.allclose(x0[0].double(), (w0 * z[0] + (1 - w0) * z[1]).double(), atol=1e-5)


def test_orbit_covers_band_deterministically():
    config = ReferencePriorConfig()
    cams = reference_orbit(96, config)
    assert len(cams) == 96 and cams.width == 64
    assert float(cams.elevation.min()) >= -10.0 - 1e-3 and float(cams.elevation.max()) <= 50.0 + 1e-3
    assert float(cams.elevation.max() - cams.elevation.min()) > 50
    assert torch.allclose(cams.distance, torch.full((96,), 2.8)) and torch.allclose(cams.fovy, torch.full((96,), 42.5))
    hist = torch.histc(cams.azimuth, bins=8, min=0, max=360)
    assert int(hist.min()) >= 8  # every 45° sector has references
    assert torch.equal(reference_orbit(96, config).c2w, cams.c2w)


def test_encode_images_differentiable_and_roundtrip():
    prior = ReferencePrior(ReferencePriorConfig(image_size=S))
    rgb = torch.rand(2, 3, 2 * S, 2 * S, requires_grad=True)
    z = prior.encode_images(rgb)
    assert z.shape == (2, 3, S, S) and float(z.detach().min()) >= -1 and float(z.detach().max()) <= 1
    (z * torch.randn_like(z)).sum().backward()
    assert rgb.grad is not None and float(rgb.grad.abs().sum()) > 0
    same = torch.rand(2, 3, S, S)
    assert torch.allclose(prior.decode(prior.encode_images(same)), same, atol=1e-6)


def test_config_validation_and_cache_dir(monkeypatch, tmp_path):
    with pytest.raises(UserError):
        ReferencePriorConfig(background="purple")
    with pytest.raises(UserError):
        ReferencePriorConfig(camera_temperature=0)
    assert ReferencePriorConfig(background=[0, 0, 0]).background_rgb() == (0.0, 0.0, 0.0)
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    assert ReferencePriorConfig().resolved_cache_dir() == tmp_path / "reference"
    assert ReferencePriorConfig(cache_dir=str(tmp_path / "x")).resolved_cache_dir() == tmp_path / "x"


# ---- with the shape library ----------------------------------------------------------------

def _small_config(cache_dir) -> ReferencePriorConfig:
    return ReferencePriorConfig(image_size=S, num_views=8, supersample=1, uncond_colours=("red",),
                                uncond_views=1, cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("reference-cache")


def test_encode_prompt_red_cube(shared_cache):
    prior = ReferencePrior(_small_config(shared_cache))
    emb = prior.encode_prompt("a red cube", negative_prompt="blurry, low quality")
    assert emb.cond.shape == (1, 1) and emb.uncond.shape == (1, 1) and emb.views == {}
    assert emb.cond.dtype == torch.long and int(emb.cond) != int(emb.uncond)
    refs = prior.reference_set(int(emb.cond))
    assert refs.images.shape == (8, 3, S, S) and refs.directions.shape == (8, 3)
    assert torch.allclose(refs.directions.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert 0 <= float(refs.images.min()) and float(refs.images.max()) <= 1
    assert float(refs.images.std()) > 0.01  # not a blank background
    generic = prior.reference_set(int(emb.uncond))
    assert generic.images.shape == (len(shapes.OBJECTS), 3, S, S)
    # Same prompt again: same set, nothing new registered.
    n = prior.num_sets
    assert int(prior.encode_prompt("a red cube").cond) == int(emb.cond) and prior.num_sets == n
    # Rendered references are fixed points of the small-noise denoiser, with and without cameras.
    cams = reference_orbit(8, prior.config)
    z0 = prior.encode_images(refs.images)
    x_t, eps, alpha, sigma = _noisy(prior, z0, 1)
    cond = emb.conditional(cams, 8)
    for camera in (None, cams):
        x0 = prior.predict_x0(x_t, torch.ones(8, dtype=torch.long), cond, camera)
        assert (x0 - z0).abs().max() < 1e-3
    eps_hat = prior.predict_noise(x_t, torch.ones(8, dtype=torch.long), cond, cams)
    assert eps_hat.shape == (8, 3, S, S) and torch.isfinite(eps_hat).all()
    # Mixed batch: conditional and unconditional rows in one call.
    mixed = torch.cat([emb.conditional(None, 2), emb.unconditional(2)])
    assert prior.predict_noise(x_t[:4], torch.full((4,), 700), mixed, cams[:2]).shape == (4, 3, S, S)


def test_negative_prompt_naming_an_object(shared_cache):
    prior = ReferencePrior(_small_config(shared_cache))
    emb = prior.encode_prompt("a red cube", negative_prompt="a red sphere")
    assert prior.reference_set(int(emb.uncond)).label == "a red sphere"
    assert emb.empty is not None and prior.reference_set(int(emb.empty)).label == "generic"


def test_out_of_vocabulary_prompt_raises(shared_cache):
    prior = ReferencePrior(_small_config(shared_cache))
    with pytest.raises(UserError):
        prior.encode_prompt("a glorptastic zibbleflonk")


def test_cache_hit_and_corrupt_file(shared_cache, monkeypatch):
    calls = []
    real = ref_mod.render_reference_layers

    def counting(spec, cameras, config):
        calls.append(spec)
        return real(spec, cameras, config)

    monkeypatch.setattr(ref_mod, "render_reference_layers", counting)
    first = ReferencePrior(_small_config(shared_cache))
    idx = int(first.encode_prompt("a red cube").cond)
    ref_set = first.reference_set(idx)
    assert ref_set.path is not None and ref_set.path.is_file()
    calls.clear()
    second = ReferencePrior(_small_config(shared_cache))
    again = second.reference_set(int(second.encode_prompt("a red cube").cond))
    assert calls == []  # everything came from the cache
    assert torch.equal(again.images, ref_set.images) and torch.equal(again.directions, ref_set.directions)
    ref_set.path.write_bytes(b"\x00garbage, not safetensors")
    third = ReferencePrior(_small_config(shared_cache))
    regen = third.reference_set(int(third.encode_prompt("a red cube").cond))
    assert len(calls) == 1  # only the corrupt set was re-rendered
    assert torch.equal(regen.images, ref_set.images)
    assert reference_cache.load_references(ref_set.path, cache_key({"x": 1}), 8, S) is None  # wrong key
    # The rewritten file is valid again.
    calls.clear()
    fourth = ReferencePrior(_small_config(shared_cache))
    fourth.encode_prompt("a red cube")
    assert calls == []


# ---- random solid backgrounds, marginalised ------------------------------------------------

def _quadrature_denoise(x, alpha, sigma, refs, uncovered, var, grid):
    """The random-background denoiser by brute force: every (reference, background on a grid)
    pair as a point of an ordinary mixture, weighted by the background's Gaussian prior."""
    n, pixels = uncovered.shape
    channels = refs.shape[1] // pixels
    betas = torch.cartesian_prod(*[grid] * channels).reshape(-1, channels)  # [K, C]
    points = (refs[:, None, :].reshape(n, 1, channels, pixels)
              + uncovered[:, None, None, :] * betas[None, :, :, None]).reshape(n * len(betas), -1)
    log_prior = (-(betas ** 2).sum(-1) / (2 * var)).repeat(n)
    return exact_denoise(x, alpha, sigma, points, log_prior[None].expand(len(x), -1))


@pytest.mark.parametrize("channels", [1, 2])
def test_random_background_denoise_matches_quadrature(channels):
    g = torch.Generator().manual_seed(5)
    n, pixels = 3, 6
    alpha_img = (torch.rand(n, pixels, generator=g) > 0.5).double() * torch.rand(n, pixels, generator=g).double()
    colour = torch.rand(n, channels, pixels, generator=g).double() * 2 - 1
    refs = (alpha_img[:, None] * colour).reshape(n, -1)
    uncovered = 1 - alpha_img
    x = torch.randn(4, channels * pixels, generator=g).double()
    a = torch.tensor([0.9, 0.6, 0.3, 0.1]).double()
    sig = (1 - a ** 2).sqrt()
    grid = torch.linspace(-4.0, 4.0, 801 if channels == 1 else 241).double()
    expected = _quadrature_denoise(x, a, sig, refs, uncovered, 1 / 3, grid)
    got = exact_denoise(x, a, sig, refs, uncovered=uncovered, background_var=1 / 3)
    assert torch.allclose(got, expected, atol=2e-5), (got - expected).abs().max()


def test_opaque_references_ignore_the_background_term():
    g = torch.Generator().manual_seed(6)
    refs = torch.rand(5, 3 * 8, generator=g).double() * 2 - 1
    x = torch.randn(3, 3 * 8, generator=g).double()
    a, sig = torch.tensor([0.8, 0.5, 0.2]).double(), torch.tensor([0.6, 0.86, 0.98]).double()
    assert torch.allclose(exact_denoise(x, a, sig, refs, uncovered=torch.zeros(5, 8).double()),
                          exact_denoise(x, a, sig, refs), atol=1e-12)


def test_random_background_white_cube_stays_visible(tmp_path):
    """A white cube over a random colour is recovered with its background: the prior sees the object,
    where a white-backed prior's x̂0 of the same input is a white square smeared over the colour."""
    config = ReferencePriorConfig(image_size=S, num_views=8, background="random", camera_aware=False,
                                  uncond_colours=("red",), uncond_views=1, cache_dir=str(tmp_path))
    assert config.random_background and config.background_rgb() == (0.0, 0.0, 0.0)
    prior = ReferencePrior(config)
    emb = prior.encode_prompt("a white cube")
    ref_set = prior.reference_set(int(emb.cond))
    assert ref_set.alpha is not None and ref_set.alpha.shape == (8, 1, S, S)
    assert 0.05 < float(ref_set.alpha.mean()) < 0.9
    # Loaded again from the cache, alpha included.
    again = ReferencePrior(config)
    cached = again.reference_set(int(again.encode_prompt("a white cube").cond))
    assert cached.path == ref_set.path and torch.equal(cached.alpha, ref_set.alpha)
    # The truth: view 3 over teal.
    teal = torch.tensor([0.1, 0.6, 0.5]).view(1, 3, 1, 1)
    truth = ref_set.images[3:4] + (1 - ref_set.alpha[3:4]) * teal
    z0 = prior.encode_images(truth)
    white_backed = ReferencePrior(dataclasses.replace(config, background="white"))
    white_emb = white_backed.encode_prompt("a white cube")
    for t, tol in ((100, 0.03), (300, 0.1)):  # the background's estimate is noisier as t grows
        x_t, *_ = _noisy(prior, z0.expand(4, -1, -1, -1), t, seed=t)
        x0 = prior.predict_x0(x_t, torch.full((4,), t), emb.conditional(None, 4))
        assert (x0 - z0).abs().mean() < tol, (t, float((x0 - z0).abs().mean()))
        x0_white = white_backed.predict_x0(x_t, torch.full((4,), t), white_emb.conditional(None, 4))
        assert (x0_white - z0).abs().mean() > 0.5  # its references are all white: the teal is lost
    assert ReferencePriorConfig(background="random").random_background
    with pytest.raises(UserError, match="unknown background 'plaid'.*random"):
        ReferencePriorConfig(background="plaid")


def test_exact_views_render_the_query_camera_itself(tmp_path):
    """With `exact_views` the conditional x̂0 is the object seen from the query's own camera at every t,
    where the fixed orbit (8 views here) can only offer a neighbouring view."""
    config = ReferencePriorConfig(image_size=S, num_views=8, exact_views=True, uncond_colours=("red",),
                                  uncond_views=1, cache_dir=str(tmp_path))
    prior = ReferencePrior(config)
    emb = prior.encode_prompt("a blue pyramid")
    cams = from_spherical(torch.tensor([17.0, 61.0]), torch.tensor([12.0, 33.0]), config.distance, config.fovy, S, S)
    truth = prior.encode_images(ref_mod.render_references(shapes.parse_prompt("a blue pyramid"), cams, config))
    orbit_prior = ReferencePrior(dataclasses.replace(config, exact_views=False))
    orbit_emb = orbit_prior.encode_prompt("a blue pyramid")
    for t in (50, 900):
        x_t, *_ = _noisy(prior, truth, t, seed=t)
        x0 = prior.predict_x0(x_t, torch.full((2,), t), emb.conditional(cams, 2), cams)
        assert torch.allclose(x0, truth, atol=1e-5), t  # one reference per row: the render itself
        x0_orbit = orbit_prior.predict_x0(x_t, torch.full((2,), t), orbit_emb.conditional(cams, 2), cams)
        assert (x0_orbit - truth).abs().mean() > 0.01  # the orbit holds no view from these cameras
    # CFG's tiled batch (2B rows, B cameras) and a camera-free call (the orbit set) both work.
    x_t, *_ = _noisy(prior, truth, 300)
    both = torch.cat([emb.conditional(cams, 2), emb.unconditional(2)])
    assert prior.predict_noise(torch.cat([x_t, x_t]), torch.full((4,), 300), both, cams).shape == (4, 3, S, S)
    assert prior.predict_x0(x_t, torch.full((2,), 300), emb.conditional(None, 2), None).shape == (2, 3, S, S)


def test_exact_views_needs_a_camera_aware_prior_and_a_whole_tiling():
    with pytest.raises(UserError, match="exact_views needs camera_aware"):
        ReferencePriorConfig(exact_views=True, camera_aware=False)
    prior = ReferencePrior(ReferencePriorConfig(image_size=S, num_views=4, exact_views=True, uncond_colours=("red",),
                                                uncond_views=1))
    emb = prior.encode_prompt("a red cube")
    cams = reference_orbit(2, prior.config)
    with pytest.raises(ValueError, match="2 cameras for a batch of 3"):
        prior.predict_x0(torch.zeros(3, 3, S, S), torch.full((3,), 500), emb.conditional(None, 3), cams)
