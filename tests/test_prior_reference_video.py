"""The `reference-video` prior: exact clip denoising, phase and camera weighting, prompts, cache, errors."""

from __future__ import annotations

import pytest
import torch

from dreamer.cameras import clip_cameras, frame_times
from dreamer.errors import UserError
from dreamer.priors import reference_video as rv
from dreamer.priors.exact_mixture import exact_clip_denoise, exact_denoise
from dreamer.priors.reference_orbit import reference_orbit
from dreamer.priors.reference_video import ReferenceVideoPrior, ReferenceVideoPriorConfig, clip_layout
from dreamer.priors.video import VideoPrior
from dreamer.shapes.animated import render_motion
from dreamer.shapes.prompt import parse_motion_prompt

pytestmark = pytest.mark.slow(seconds=10)  # a mid-sized file: scheduled early (tests/conftest.py)

S, F, V, P = 16, 4, 4, 4
PROMPT = "a red cube bouncing"


def _config(**overrides) -> ReferenceVideoPriorConfig:
    base = dict(image_size=S, num_views=V, num_frames=F, num_phases=P, uncond_shapes=("cube",),
                uncond_motions=("still", "bouncing"), uncond_views=1)
    return ReferenceVideoPriorConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def prior() -> ReferenceVideoPrior:
    return ReferenceVideoPrior(_config())


def _reference_clips(prior: ReferenceVideoPrior, index: int) -> torch.Tensor:
    """The set's clips materialised [N, F, 3, S, S] in [−1, 1]."""
    bank = prior.reference_set(index)
    return bank.frames[bank.clip_frames] * 2.0 - 1.0


def _clip_camera(view: int, phase: float, config: ReferenceVideoPriorConfig):
    return clip_cameras(reference_orbit(config.num_views, config)[view], frame_times(config.num_frames, phase))


def test_layout_shares_frames_between_phases():
    lay = clip_layout(num_views=3, num_frames=4, num_phases=8)
    assert lay["frame_view"].shape == (3 * 8,)  # 8 distinct times per view, not 8 phases × 4 frames
    assert lay["clip_frames"].shape == (3 * 8, 4) and lay["clip_times"].shape == (3 * 8, 4)
    # clip (view 1, phase 3/8): times 3/8 + k/4, frames of view 1 only
    n = 1 * 8 + 3
    assert torch.allclose(lay["clip_times"][n], torch.tensor([0.375, 0.625, 0.875, 0.125], dtype=torch.float64))
    assert torch.equal(lay["frame_view"][lay["clip_frames"][n]], torch.ones(4, dtype=torch.long))
    assert torch.allclose(lay["frame_time"][lay["clip_frames"][n]], lay["clip_times"][n])
    assert clip_layout(2, 4, 3)["frame_view"].shape == (2 * 12,)  # no shared times when P is not a multiple of F


def test_exact_clip_denoise_equals_exact_denoise_over_materialised_clips():
    g = torch.Generator().manual_seed(0)
    bank, x = torch.randn(10, 12, generator=g), torch.randn(3, 4, 12, generator=g)
    clip_frames = torch.randint(0, 10, (7, 4), generator=g)
    alpha, sigma = torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.4, 0.8, 1.0])
    log_w = torch.randn(3, 7, generator=g)
    fast = exact_clip_denoise(x, alpha, sigma, bank, clip_frames, log_w)
    slow = exact_denoise(x.reshape(3, -1), alpha, sigma, bank[clip_frames].reshape(7, -1), log_w)
    assert fast.shape == (3, 4, 12) and fast.dtype == torch.float64
    assert torch.allclose(fast.reshape(3, -1), slow, atol=1e-12)


def test_is_a_video_prior_with_clip_shapes(prior):
    assert isinstance(prior, VideoPrior) and prior.is_video and prior.camera_conditioned
    assert prior.num_frames == F and prior.latent_shape == (3, S, S)
    rgb = torch.rand(2, F, 3, 24, 24, requires_grad=True)
    z = prior.encode_images(rgb)
    assert z.shape == (2, F, 3, S, S) and z.min() >= -1 and z.max() <= 1
    z.sum().backward()
    assert rgb.grad is not None and rgb.grad.abs().sum() > 0
    assert prior.decode(z.detach()).shape == (2, F, 3, S, S)
    emb = prior.encode_prompt(PROMPT)
    cams = clip_cameras(reference_orbit(2, prior.config), frame_times(F, 0.1))
    x = torch.randn(2, F, 3, S, S, generator=torch.Generator().manual_seed(1))
    for camera in (cams, cams[:F], None):  # B·F cameras, one clip's tiled (CFG), none
        eps = prior.predict_noise(x, torch.tensor([10, 900]), emb.conditional(None, 2), camera)
        assert eps.shape == x.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()
    with pytest.raises(UserError, match="clips"):
        prior.encode_images(torch.rand(2, 3, S, S))
    with pytest.raises(UserError, match="VSD and ESD"):
        prior.network()


def test_small_noise_returns_the_nearest_reference_clip(prior):
    emb = prior.encode_prompt(PROMPT)
    clips = _reference_clips(prior, int(emb.cond))
    k = 6  # view 1, phase 2/4
    y = clips[k:k + 1]
    g = torch.Generator().manual_seed(2)
    for t in (0, 5):
        abar = prior.alphas_cumprod[t].double()
        eps = torch.randn(y.shape, generator=g, dtype=torch.float64)
        x_t = (abar.sqrt() * y.double() + (1 - abar).sqrt() * eps).float()
        x0 = prior.predict_x0(x_t, torch.tensor([t]), emb.cond)  # camera-free: nearest clip wins alone
        assert torch.allclose(x0, y, atol=1e-4)
        eps_hat = prior.predict_noise(x_t, torch.tensor([t]), emb.cond)
        assert torch.allclose(eps_hat.double(), eps, atol=2e-3 if t == 0 else 1e-4)
    # on a reference clip with tiny σ: x̂0 = y_k and ε̂ ≈ 0
    x_t = (prior.alphas_cumprod[0].sqrt() * y).float()
    assert torch.allclose(prior.predict_x0(x_t, torch.tensor([0]), emb.cond), y, atol=1e-5)
    assert prior.predict_noise(x_t, torch.tensor([0]), emb.cond).abs().max() < 1e-3


def test_query_times_choose_the_phase():
    """Pure noise, a query from reference camera 0 at phase 0.5: the bouncing cube is up in frame 0."""
    config = _config(camera_temperature=1.0, phase_temperature=0.01)
    prior = ReferenceVideoPrior(config)
    emb = prior.encode_prompt(PROMPT)
    x_t = torch.zeros(1, F, 3, S, S)  # no evidence: the weights alone choose
    t = torch.tensor([999])
    up = prior.predict_x0(x_t, t, emb.cond, _clip_camera(0, 0.5, config))
    rest = prior.predict_x0(x_t, t, emb.cond, _clip_camera(0, 0.0, config))
    truth = render_motion(parse_motion_prompt(PROMPT), _clip_camera(0, 0.5, config)).rgb.permute(0, 3, 1, 2)
    assert torch.allclose(up[0], truth * 2 - 1, atol=1e-4)  # the phase-0.5 clip itself
    assert torch.allclose(up[0, 0], rest[0, 2], atol=1e-4)  # its first frame is the rest clip's frame 2

    def height(frame):  # mean image row of the red object's pixels (smaller = higher up)
        mask = (frame[0] > 0.0) & (frame[1] < -0.2)
        rows = torch.arange(S, dtype=torch.float32)[:, None].expand(S, S)
        return rows[mask].mean()

    assert height(up[0, 0]) < height(rest[0, 0]) - 0.5
    # time weighting off: the same query averages over phases, no longer the phase-0.5 clip
    blind = ReferenceVideoPrior(_config(camera_temperature=1.0, time_aware=False))
    avg = blind.predict_x0(x_t, t, blind.encode_prompt(PROMPT).cond, _clip_camera(0, 0.5, config))
    assert (avg[0] - up[0]).abs().max() > 0.1


def test_negative_prompts_and_sets(prior):
    emb = prior.encode_prompt(PROMPT, "static, motionless")
    assert emb.cond.shape == emb.uncond.shape == (1, 1) and emb.views == {}
    assert int(emb.uncond) == prior.generic_index() and emb.empty is None
    named = prior.encode_prompt(PROMPT, "a blue sphere spinning")
    assert int(named.uncond) != int(named.cond) and int(named.empty) == prior.generic_index()
    assert int(prior.encode_prompt("a bouncing red cube").cond) == int(emb.cond)  # same MotionSpec, same set
    generic = prior.reference_set(prior.generic_index())
    assert generic.clip_frames.shape == (2 * 1 * P, F)  # cube × (still, bouncing) × 1 view × P phases
    assert generic.frames.shape == (2 * 1 * P, 3, S, S)


def test_outside_the_library_is_one_line():
    with pytest.raises(UserError) as err:
        ReferenceVideoPrior(_config()).encode_prompt("a purple elephant dancing")
    text = str(err.value)
    assert "\n" not in text and "cube" in text and "red" in text and "bouncing" in text


def test_config_errors_are_one_line():
    for bad in (dict(num_frames=0), dict(num_phases=1.5), dict(phase_temperature=0.0), dict(uncond_shapes=("dragon",)),
                dict(uncond_motions=("flying",)), dict(image_size=2), dict(camera_temperature=0.0)):
        with pytest.raises(UserError, match="^reference-video prior: "):
            _config(**bad)
    with pytest.raises(UserError, match="8 frames"):
        p = ReferenceVideoPrior(_config(num_frames=8))
        p.predict_noise(torch.zeros(1, F, 3, S, S), torch.tensor([1]), p.encode_prompt(PROMPT).cond)


def test_deterministic_and_cached(tmp_path, monkeypatch):
    config = _config(cache_dir=str(tmp_path))
    first = ReferenceVideoPrior(config)
    emb = first.encode_prompt(PROMPT)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("a-red-cube-bouncing-") and files[0].endswith(".safetensors")

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(rv, "render_motion_frames", no_render)
    second = ReferenceVideoPrior(config)
    emb2 = second.encode_prompt(PROMPT)
    assert torch.equal(first.reference_set(int(emb.cond)).frames, second.reference_set(int(emb2.cond)).frames)
    cams = _clip_camera(1, 0.3, config)
    x = torch.randn(1, F, 3, S, S, generator=torch.Generator().manual_seed(4))
    a = first.predict_noise(x, torch.tensor([400]), emb.cond, cams)
    b = second.predict_noise(x, torch.tensor([400]), emb2.cond, cams)
    assert torch.equal(a, b)


def test_random_background_is_refused_in_one_line():
    from dreamer.priors.reference_video import ReferenceVideoPriorConfig

    with pytest.raises(UserError, match="reference-video prior: background 'random' is not supported"):
        ReferenceVideoPriorConfig(background="random")
