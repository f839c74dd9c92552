"""The exact priors' shared base (`ExactMixturePrior`): both priors stand on it, ε̂ follows from x̂0 the
same way for both, and bad input is a one-line `UserError`, not an assert."""

from __future__ import annotations

import pytest
import torch

from dreamer.cameras import clip_cameras, frame_times
from dreamer.errors import UserError
from dreamer.priors.exact_prior import ExactMixturePrior
from dreamer.priors.reference import ReferencePrior, ReferencePriorConfig
from dreamer.priors.reference_orbit import reference_orbit
from dreamer.priors.reference_video import ReferenceVideoPrior, ReferenceVideoPriorConfig
from dreamer.priors.video import VideoPrior

S, F = 16, 4


@pytest.fixture(scope="module")
def image_prior() -> ReferencePrior:
    g = torch.Generator().manual_seed(0)
    images, dirs = torch.rand(5, 3, S, S, generator=g), torch.randn(5, 3, generator=g)
    return ReferencePrior.from_references(images, dirs, ReferencePriorConfig(image_size=S))


@pytest.fixture(scope="module")
def video_prior() -> ReferenceVideoPrior:
    return ReferenceVideoPrior(ReferenceVideoPriorConfig(image_size=S, num_views=2, num_frames=F, num_phases=F,
                                                         uncond_shapes=("cube",), uncond_motions=("still",),
                                                         uncond_views=1))


def _image_case(prior: ReferencePrior):
    x = torch.randn(3, 3, S, S, generator=torch.Generator().manual_seed(1))
    cams = reference_orbit(3, prior.config)
    return x, torch.zeros(3, 1, dtype=torch.long), cams


def _video_case(prior: ReferenceVideoPrior):
    x = torch.randn(2, F, 3, S, S, generator=torch.Generator().manual_seed(2))
    emb = prior.encode_prompt("a red cube bouncing").conditional(None, 2)
    cams = clip_cameras(reference_orbit(2, prior.config), frame_times(F, 0.25))
    return x, emb, cams


def test_both_priors_stand_on_the_base(image_prior, video_prior):
    assert isinstance(image_prior, ExactMixturePrior) and isinstance(video_prior, ExactMixturePrior)
    assert isinstance(video_prior, VideoPrior) and video_prior.is_video and not image_prior.is_video
    for cls in (ReferencePrior, ReferenceVideoPrior):
        assert cls.exact and cls.embedded
        assert cls.predict_noise is ExactMixturePrior.predict_noise  # written once
        assert cls.predict_x0 is ExactMixturePrior.predict_x0


@pytest.mark.parametrize("which", ["image", "video"])
def test_noise_is_the_noise_of_the_posterior_mean(which, image_prior, video_prior):
    """ε̂ = (x_t − α x̂0) / σ with α = √ᾱ_t, σ = √(1 − ᾱ_t), with and without cameras."""
    prior = image_prior if which == "image" else video_prior
    x_t, emb, cams = (_image_case if which == "image" else _video_case)(prior)
    t = torch.tensor([100, 600, 950][: len(x_t)])
    abar = prior.alphas_cumprod.double()[t].reshape((-1,) + (1,) * (x_t.ndim - 1))
    for camera in (None, cams):
        x0 = prior.predict_x0(x_t, t, emb, camera)
        eps = prior.predict_noise(x_t, t, emb, camera)
        assert x0.shape == eps.shape == x_t.shape and eps.dtype == x_t.dtype
        expected = (x_t.double() - abar.sqrt() * x0.double()) / (1 - abar).sqrt()
        assert torch.allclose(eps.double(), expected, atol=1e-5), (which, camera is None)


def _one_line_user_error(call, match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_bad_input_is_a_one_line_user_error(image_prior, video_prior):
    x, emb, _ = _image_case(image_prior)
    t = torch.full((3,), 500)
    # an image of the wrong size (was an assert)
    _one_line_user_error(lambda: image_prior.predict_noise(torch.zeros(3, 3, S + 1, S + 1), t, emb),
                         r"denoises images \[B, 3, 16, 16\]")
    # timesteps that are neither one per sample nor one for all (was an assert; the video prior did not check)
    _one_line_user_error(lambda: image_prior.predict_noise(x, torch.full((2,), 500), emb),
                         "2 timesteps for a batch of 3")
    xv, embv, _ = _video_case(video_prior)
    _one_line_user_error(lambda: video_prior.predict_noise(xv, torch.full((3,), 500), embv),
                         "3 timesteps for a batch of 2")
    # an embedding that is not one set index per sample
    _one_line_user_error(lambda: image_prior.predict_x0(x, t, torch.zeros(2, dtype=torch.long)),
                         "one reference-set index per sample")
    _one_line_user_error(lambda: video_prior.predict_x0(xv, torch.full((2,), 500), torch.zeros(3, dtype=torch.long)),
                         "one reference-set index per sample")
    # renders without an RGB channel axis (was an assert inside the pixel encoding)
    _one_line_user_error(lambda: image_prior.encode_images(torch.rand(2, 4, S, S)), r"\[\.\.\., 3, H, W\]")
    _one_line_user_error(lambda: video_prior.encode_images(torch.rand(2, F, 1, S, S)), r"\[\.\.\., 3, H, W\]")
