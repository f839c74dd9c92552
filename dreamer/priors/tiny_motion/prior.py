"""`TinyMotionPrior`: the `tiny-motion` video UNet behind the `VideoPrior` contract (pixel space, 32 px).

Clips are [B, F, 3, S, S] in [−1, 1] (frame by frame as `tiny` encodes images). The prompt is MiniLM
token embeddings, as `tiny`'s; a motion word in it ("a red cube bouncing") reaches the network through
the text projection into the time embedding (dreamer.priors.tiny_motion.model). The camera of a clip
is its first frame's (a clip is filmed from one camera in training and in 4D distillation), read
through `tiny`'s camera features; `camera=None` is the camera-free branch. Frame times are not read:
a clip may start at any phase of its loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dreamer.cameras import Camera
from dreamer.devices import resolve_device
from dreamer.errors import UserError
from dreamer.priors import schedule
from dreamer.priors.base import PromptEmbedding
from dreamer.priors.pixel_space import decode_pixels, encode_pixels
from dreamer.priors.tiny.model import camera_features
from dreamer.priors.tiny.text import PromptEncoder, TextEncoder
from dreamer.priors.tiny_motion.model import clip_call
from dreamer.priors.video import VideoPrior
from dreamer.resources import resolve_weights


@dataclass
class TinyMotionPriorConfig:
    """Settings of the embedded `tiny-motion` video prior."""

    weights: str = "assets/priors/tiny_motion"  # weights folder (the trained temporal layers; names its image prior)
    num_frames: int = 0  # frames per clip the trainer renders; 0 = the clip length it was trained on

    def resolved_weights(self) -> Path:
        return resolve_weights(self.weights)


class TinyMotionPrior(VideoPrior):
    """The project's small text-to-video prior: `tiny`'s frozen image UNet with trained temporal layers."""

    embedded = True
    camera_conditioned = True
    prediction_type = "v_prediction"

    def __init__(self, config: TinyMotionPriorConfig | None = None, device: str | torch.device = "cpu", *,
                 unet: torch.nn.Module | None = None, info=None, image_info=None,
                 encoder: TextEncoder | None = None) -> None:
        """Loads `config.weights`; or wraps an in-memory video `unet` with its infos (tests)."""
        from dreamer.priors.tiny_motion.weights import load_motion_network

        super().__init__()
        self.config = config if config is not None else TinyMotionPriorConfig()
        device = resolve_device(device)
        if unet is None:
            unet, info, image_info = load_motion_network(self.config.resolved_weights(), device)
        self.unet = unet.to(device).eval().requires_grad_(False)
        self.info, self.image_info = info, image_info
        self.image_size = int(image_info.unet.image_size)
        self.latent_shape = (3, self.image_size, self.image_size)
        self.num_frames = int(self.config.num_frames or info.frames)
        self.frame_noise_share = float(info.noise_share)  # as trained: guidance and sampling draw noise so
        if not 2 <= self.num_frames <= info.layers.max_frames:
            raise UserError(f"tiny-motion prior: num_frames must be in [2, {info.layers.max_frames}], "
                            f"got {self.num_frames}")
        s = image_info.schedule
        self.num_train_timesteps = int(s.num_train_timesteps)
        self.schedule = s
        acp = schedule.make_alphas_cumprod(s.num_train_timesteps, s.beta_schedule, s.beta_start, s.beta_end)
        self.register_buffer("alphas_cumprod", acp.to(device), persistent=False)
        self._prompts = PromptEncoder(image_info.max_length, device, encoder)

    @property
    def device(self) -> torch.device:
        return self.alphas_cumprod.device

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        """`view_dependent` is ignored: this prior takes the camera itself."""
        return self._prompts.embedding(prompt, negative_prompt)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,F,3,H,W] in [0,1] -> [B,F,3,S,S] in [−1,1], differentiable."""
        self.check_clip(rgb)
        B, F = rgb.shape[:2]
        return encode_pixels(rgb.flatten(0, 1), self.image_size).unflatten(0, (B, F))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.check_clip(z)
        return decode_pixels(z)

    def clip_camera_features(self, camera: Camera | None, batch: int, frames: int) -> torch.Tensor:
        """[B, 6] features of each clip's first-frame camera; `camera` holds B·F cameras clip by clip, or
        (B/k)·F tiled k times (CFG's [cond; uncond]); None = the "no camera" zeros."""
        if camera is None:
            return camera_features(None, batch)
        if len(camera) % frames or batch % (len(camera) // frames):
            raise ValueError(f"{len(camera)} cameras for {batch} clips of {frames} frames (expected B·F, clip by clip)")
        first = camera[::frames]
        feats = camera_features(first.spherical().float().cpu(), len(first))
        return feats.repeat(batch // len(first), 1)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ [B, F, 3, S, S] for clips x_t, t [B] (or a scalar) and token embeddings [B, L, D]."""
        self.check_clip(x_t)
        batch, frames = x_t.shape[:2]
        if tuple(x_t.shape[2:]) != self.latent_shape or frames > self.info.layers.max_frames:
            raise UserError(f"the tiny-motion prior denoises clips of at most {self.info.layers.max_frames} frames of "
                            f"{self.latent_shape}; got {tuple(x_t.shape)}")
        t = schedule.timesteps(t, batch, self.device, self.num_train_timesteps)
        feats = self.clip_camera_features(camera, batch, frames)
        v = clip_call(self.unet, x_t.to(self.device).float(), t, embedding.to(self.device).float(), feats)
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod, t, ndim=x_t.ndim)
        return schedule.eps_from_output(v.float(), x_t.to(self.device).float(), alpha, sigma,
                                        "v_prediction").to(x_t.dtype)
