"""Test-only stand-ins. `FakePixelPrior`: a tiny deterministic pixel-space Prior.

  encode_images(x) = 2·resize(x, image_size) − 1   (linear; identity resize when sizes match)
  predict_noise(x_t, t, e, cam) = conv(x_t) + (t/T)·x_t + proj(e) [+ cam_proj(c2w) if camera-conditioned]
  alphas_cumprod: SD's, make_alphas_cumprod(1000, "scaled_linear") (diffusers, β ∈ [0.00085, 0.012]).

All weights are drawn from a seeded generator and frozen (requires_grad False). The output is
per-sample (no mixing across the batch), so a batched call equals a per-sample loop. Prompts map
to fixed random vectors via a CRC of their text (stable across processes).
"""

from __future__ import annotations

import zlib

import torch

from dreamer.cameras import VIEW_LABELS, Camera
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.priors.video import VideoPrior
from dreamer.priors.schedule import make_alphas_cumprod


def sd_alphas_cumprod() -> torch.Tensor:
    """ᾱ [1000] of Stable Diffusion's scheduler (a fresh copy)."""
    return make_alphas_cumprod(1000, "scaled_linear")


class FakePixelPrior(Prior):
    """A tiny deterministic pixel-space prior for tests (see module doc)."""

    def __init__(self, image_size: int = 8, embed_dim: int = 4, camera_conditioned: bool = False,
                 seed: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.proj = torch.nn.Linear(embed_dim, 3)
        self.cam_proj = torch.nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        self.requires_grad_(False)
        self.to(dtype)
        self.register_buffer("alphas_cumprod", sd_alphas_cumprod())
        self.num_train_timesteps = 1000
        self.image_size = image_size
        self.latent_shape = (3, image_size, image_size)
        self.camera_conditioned = camera_conditioned
        self.embed_dim = embed_dim
        self.nan_output = False  # test hook: when True, predict_noise puts NaN/inf into its output
        self.calls: list[dict] = []  # one record per predict_noise call: batch, dtype, camera given

    def _text(self, text: str) -> torch.Tensor:
        gen = torch.Generator().manual_seed(zlib.crc32(text.encode("utf-8")))
        return torch.randn(1, self.embed_dim, generator=gen)

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        views = {label: self._text(f"{prompt}, {label} view") for label in VIEW_LABELS} if view_dependent else {}
        return PromptEmbedding(prompt, negative_prompt, cond=self._text(prompt), uncond=self._text(negative_prompt),
                               views=views, empty=self._text(""))

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.shape[-2:] != (self.image_size, self.image_size):
            rgb = torch.nn.functional.interpolate(rgb, size=(self.image_size, self.image_size),
                                                  mode="bilinear", align_corners=False, antialias=True)
        return 2 * rgb - 1

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return ((z + 1) / 2).clamp(0, 1)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        self.calls.append({"batch": x_t.shape[0], "dtype": x_t.dtype, "camera": camera is not None})
        dtype = self.conv.weight.dtype
        x = x_t.to(dtype)
        frac = (t.to(dtype) / self.num_train_timesteps).reshape(-1, 1, 1, 1)
        eps = self.conv(x) + frac * x + self.proj(embedding.to(dtype))[:, :, None, None]
        if self.camera_conditioned and camera is not None:
            eps = eps + self.cam_proj(camera.flat_pose().to(dtype))[:, :, None, None]
        if self.nan_output:
            eps = eps.clone()
            eps[0, 0, 0, 0] = float("nan")
            eps[-1, -1, -1, -1] = float("inf")
        return eps


class FakeVideoPrior(VideoPrior):
    """A tiny deterministic pixel-space video prior: FakePixelPrior frame by frame, plus a term that
    mixes the frames (each frame's ε̂ gets `mix` × the clip's mean x_t), so its output is not per-frame.

    With a camera-conditioned fake, the B·F cameras must come clip by clip with their times; it
    records them (`calls[-1]["times"]`)."""

    def __init__(self, image_size: int = 8, num_frames: int = 4, camera_conditioned: bool = False, seed: int = 0,
                 mix: float = 0.5):
        super().__init__()
        self.frame_prior = FakePixelPrior(image_size, camera_conditioned=camera_conditioned, seed=seed)
        self.register_buffer("alphas_cumprod", sd_alphas_cumprod())
        self.num_train_timesteps = 1000
        self.image_size = image_size
        self.latent_shape = (3, image_size, image_size)
        self.camera_conditioned = camera_conditioned
        self.num_frames = num_frames
        self.mix = mix
        self.calls: list[dict] = []

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        return self.frame_prior.encode_prompt(prompt, negative_prompt, view_dependent)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        self.check_clip(rgb)
        return self.frame_prior.encode_images(rgb.flatten(0, 1)).unflatten(0, rgb.shape[:2])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.frame_prior.decode(z)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        self.check_clip(x_t)
        B, F = x_t.shape[:2]
        if camera is not None:
            assert len(camera) == B * F, (len(camera), B, F)
        self.calls.append({"batch": B, "frames": F, "camera": camera is not None,
                           "times": None if camera is None else camera.times.clone()})
        eps = self.frame_prior.predict_noise(x_t.flatten(0, 1), t.repeat_interleave(F),
                                             embedding.repeat_interleave(F, dim=0), camera)
        eps = eps.unflatten(0, (B, F))
        return eps + self.mix * x_t.mean(dim=1, keepdim=True)
