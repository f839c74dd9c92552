"""DDIM sampling of clips from the `tiny-motion` prior, and the frames × views grid of `dreamer prior sample-motion`.

The sampler is `tiny`'s (dreamer.priors.tiny.sample: diffusers' DDIMScheduler, "trailing" spacing,
CFG from one batched call on [cond; uncond], η = 1 by default), run on whole clips: one clip per
camera, each filmed from that camera, all frames denoised jointly. The ground truth of a prompt
(`truth_clips`) is the animated library rendered at the same cameras, from the loop's start.
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera, clip_cameras
from dreamer.priors.schedule import frame_noise
from dreamer.priors.tiny.sample import SamplerConfig, denoise_with_cfg
from dreamer.priors.video import VideoPrior


@torch.no_grad()
def sample_clips(prior: VideoPrior, prompt: str, cameras: Camera, frames: int | None = None,
                 sampler: SamplerConfig = SamplerConfig(), seed: int = 0, negative_prompt: str = "") -> torch.Tensor:
    """[N, F, 3, S, S] clips in [0, 1], one per camera, for `prompt` (F = the prior's clip length by default)."""
    n, size, frames = len(cameras), prior.image_size, int(frames or prior.num_frames)
    embedding = prior.encode_prompt(prompt, negative_prompt)
    text = torch.cat([embedding.conditional(None, n), embedding.unconditional(n).to(embedding.cond.dtype)])
    times = torch.arange(frames, dtype=torch.float32) / frames
    clip_cams = clip_cameras(cameras, times)
    gen = torch.Generator().manual_seed(int(seed))
    x = frame_noise((n, frames, 3, size, size), gen, prior.frame_noise_share).to(prior.alphas_cumprod.device)
    return prior.decode(denoise_with_cfg(prior, x, text, clip_cams, sampler, gen)).cpu()


def truth_clips(prompt: str, cameras: Camera, frames: int, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """[N, F, 3, S, S] the animated library's clips of `prompt` (UserError outside it), from the loop's start."""
    from dreamer.shapes.animated import render_motion
    from dreamer.shapes.prompt import parse_motion_prompt

    times = torch.arange(frames, dtype=torch.float32) / frames
    out = render_motion(parse_motion_prompt(prompt), clip_cameras(cameras, times), background, supersample=2)
    return out.rgb.permute(0, 3, 1, 2).reshape(len(cameras), frames, 3, *out.rgb.shape[1:3])
