"""Noise shared across a clip's frames (`schedule.frame_noise`): its statistics, and that every place that draws
noise for a video prior (guidance, sampling, the spin test, training, the weights folder) draws it the way the
prior declares (`Prior.frame_noise_share`)."""

from __future__ import annotations

import json

import pytest
import torch

from dreamer.cameras import turntable
from dreamer.guidance.sds import SDS, SDSConfig
from dreamer.priors.base import PromptEmbedding
from dreamer.priors.schedule import frame_noise
from dreamer.priors.tiny.sample import SamplerConfig
from dreamer.priors.tiny_motion.sample import sample_clips
from dreamer.priors.tiny_motion.weights import MotionModelInfo
from dreamer.priors.video import VideoPrior


def _frame_correlation(eps: torch.Tensor) -> float:
    """Mean correlation between frames 0 and 1 of clips eps [B, F, ...]."""
    a, b = eps[:, 0].flatten(), eps[:, 1].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_shared_frame_noise_is_unit_normal_per_frame_and_correlates_frames_by_the_share():
    plain = frame_noise((4, 3, 8), torch.Generator().manual_seed(5))
    torch.testing.assert_close(plain, torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(5)), rtol=0, atol=0)
    eps = frame_noise((64, 4, 3, 16, 16), torch.Generator().manual_seed(1), 0.9)
    assert eps.shape == (64, 4, 3, 16, 16)
    assert abs(float(eps.std()) - 1.0) < 0.02 and abs(float(eps.mean())) < 0.02
    assert abs(_frame_correlation(eps) - 0.9) < 0.02
    assert abs(_frame_correlation(frame_noise((64, 4, 3, 16, 16), torch.Generator().manual_seed(1), 0.0))) < 0.02
    # clips do not share noise with each other
    other = float(torch.corrcoef(torch.stack([eps[0, 0].flatten(), eps[1, 0].flatten()]))[0, 1])
    assert abs(other) < 0.1
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        frame_noise((2, 4, 3), None, 1.5)
    with pytest.raises(ValueError, match="needs clips"):
        frame_noise((2, 4), None, 0.5)


class _StillVideoPrior(VideoPrior):
    """A video prior in pixel space (8 px, 4 frames) that predicts ε̂ = 0: whatever varies between the frames of
    its samples comes from the noise it is given."""

    camera_conditioned = False
    prediction_type = "epsilon"

    def __init__(self, share: float) -> None:
        super().__init__()
        from types import SimpleNamespace

        from dreamer.priors import schedule

        self.schedule = SimpleNamespace(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
        self.frame_noise_share = share
        self.num_frames, self.image_size, self.latent_shape = 4, 8, (3, 8, 8)
        self.num_train_timesteps = 1000
        self.register_buffer("alphas_cumprod", schedule.make_alphas_cumprod(1000, "linear", 1e-4, 0.02))

    def encode_prompt(self, prompt, negative_prompt="", view_dependent=False):
        return PromptEmbedding(prompt, negative_prompt, cond=torch.zeros(1, 2, 4), uncond=torch.zeros(1, 2, 4))

    def encode_images(self, rgb):
        return rgb * 2 - 1

    def decode(self, z):
        return ((z + 1) / 2).clamp(0, 1)

    def predict_noise(self, x_t, t, embedding, camera=None):
        return torch.zeros_like(x_t)


@pytest.mark.parametrize("share", [0.0, 0.95])
def test_guidance_draws_the_noise_the_video_prior_declares(share):
    prior = _StillVideoPrior(share)
    rule = SDS(SDSConfig(), prior, total_steps=10, generator=torch.Generator().manual_seed(0))
    renders = torch.rand(32, 4, 8, 8, 3)
    _, _, eps = rule.encode_and_draw(renders, step=0)
    assert eps.shape == (32, 4, 3, 8, 8)
    assert abs(_frame_correlation(eps) - share) < 0.05


def test_sampling_draws_the_start_and_step_noise_the_video_prior_declares():
    cams = turntable(2, 8)
    sampler = SamplerConfig(steps=4, eta=1.0, guidance=1.0)
    spread = {}
    for share in (0.0, 0.999):
        clips = sample_clips(_StillVideoPrior(share), "anything", cams, sampler=sampler, seed=0)
        assert clips.shape == (2, 4, 3, 8, 8)
        spread[share] = float((clips - clips.mean(dim=1, keepdim=True)).abs().mean())
    # with ε̂ = 0 a frame is its noise: independent noise gives four different frames, shared noise four alike
    assert spread[0.0] > 0.1 and spread[0.999] < 0.2 * spread[0.0]


def test_the_weights_folder_keeps_the_share_and_older_folders_read_as_independent(tmp_path):
    info = MotionModelInfo(frames=4, noise_share=0.9)
    assert MotionModelInfo.from_dict(json.loads(json.dumps(info.to_dict()))).noise_share == 0.9
    older = info.to_dict()
    del older["noise_share"]
    assert MotionModelInfo.from_dict(older).noise_share == 0.0
