"""Interval Score Matching (LucidDreamer).

x_s comes from a deterministic DDIM inversion of z with the unconditional ("inverse text",
the empty prompt) prediction up to s = t − δ_T (dreamer.guidance.inversion), then one more
inversion step s → t gives x_t. The target is the inversion's own ε̂_s = ε_φ(x_s, s, ∅) instead
of SDS's random ε:

    g = λ_g·(σ_t/α_t)·(ε̂_s(x_t, t, y; uncond = negative prompt) − ε̂_s).

Timesteps: t ~ U[t_min, t_max(p)] with t_max falling from t_max_start to t_max over the first
`warmup` of training; δ_T moves linearly from delta_t_start to delta_t_end over training
(timesteps on a 1000-step schedule; scaled for other T).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import Guidance, GuidanceConfig, GuidanceOutput
from dreamer.guidance.inversion import Inversion, invert
from dreamer.guidance.schedules import AnnealedTimesteps, Schedule
from dreamer.priors.base import Prior, PromptEmbedding


@dataclass
class ISMConfig(GuidanceConfig):
    """Settings of ISM (defaults: LucidDreamer)."""

    guidance_scale: float = 7.5  # CFG scale of the teacher, in `cfg_convention`
    cfg_convention: str = "standard"
    grad_scale: float = 0.1  # λ_g, multiplies the σ_t/α_t weight
    t_min: float = 0.02  # lowest t, fraction of T
    t_max: float = 0.5  # highest t after the warm-up
    t_max_start: float = 0.98  # highest t at the start
    warmup: float = 0.1  # fraction of training over which t's upper bound falls to t_max
    delta_t_start: int = 100  # δ_T = t − s at the start, timesteps of a 1000-step schedule
    delta_t_end: int = 80  # δ_T at the end of training
    stride: int = 200  # inversion stride (LucidDreamer's xs_delta_t), timesteps of a 1000-step schedule
    grad_clip: float | None = None  # elementwise clip of g; None = off
    pixel_clip: float | None = None  # per-pixel clip of the gradient on the rendered image (TSM); None = off
    view_dependent_prompt: bool = True

    def __post_init__(self) -> None:
        rule = type(self).__name__.removesuffix("Config").lower()
        F.check_choice(rule, "cfg_convention", self.cfg_convention, F.CFG_CONVENTIONS)
        F.check_timestep_range(rule, self.t_min, self.t_max)
        F.check_timestep_range(rule, self.t_min, self.t_max_start)
        if not 0.0 <= self.warmup <= 1.0:
            raise UserError(f"{rule}.warmup must lie in [0, 1], got {self.warmup}")
        if self.delta_t_start < 0 or self.delta_t_end < 0 or self.stride < 1:
            raise UserError(f"{rule}: delta_t_start/delta_t_end must be >= 0 and stride >= 1")
        for key in ("grad_clip", "pixel_clip"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise UserError(f"{rule}.{key} must be positive or null, got {value}")


class ISM(Guidance):
    """Interval score matching. Draws, in order: t [B], ε (shape of z)."""

    def __init__(self, config: ISMConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__(prior, total_steps, generator)
        self.config = config
        c = config
        warm = Schedule.linear(c.t_max_start, c.t_max, c.warmup) if c.warmup > 0 else c.t_max
        self.schedule = AnnealedTimesteps(prior.num_train_timesteps, total_steps, c.t_min, warm)
        self._delta = Schedule.linear(c.delta_t_start, c.delta_t_end, 1.0)

    def _timesteps(self, n: float) -> int:
        """n timesteps of a 1000-step schedule in this prior's T."""
        return int(round(n * self.prior.num_train_timesteps / 1000))

    def delta_t(self, step: int) -> int:
        return self._timesteps(self._delta(step, self.total_steps))

    def target(self, inversion: Inversion, s: torch.Tensor, t: torch.Tensor, empty: torch.Tensor,
               cameras: Camera | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(x_t for the teacher, the target ε) — ISM: one more inversion step s → t, target ε̂_s."""
        x_t = F.ddim_step(inversion.x_s, inversion.eps_s, s, t, self.prior.alphas_cumprod)
        return x_t, inversion.eps_s, {}

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int) -> GuidanceOutput:
        cfg = self.config
        clip = (lambda grad: F.pixelwise_clip(grad, cfg.pixel_clip)) if cfg.pixel_clip is not None else None
        z, t, eps = self.encode_and_draw(images, step, pixel_hook=clip)
        s = (t - self.delta_t(step)).clamp_min(0)
        ac = self.prior.alphas_cumprod
        cams = cameras if self.prior.camera_conditioned else None

        with torch.no_grad():
            empty = embedding.empty_prompt(z.shape[0])
            inversion = invert(self.prior, z.detach(), eps, s, self._timesteps(cfg.stride), empty, cams)
            x_t, target, extras = self.target(inversion, s, t, empty, cams)
            eps_cfg, _, _ = F.predict_cfg(self.prior, x_t, t, embedding, cameras, cfg.guidance_scale,
                                          cfg.cfg_convention, cfg.view_dependent_prompt)
            w = cfg.grad_scale * F.weight(t, ac, "sigma_over_alpha", z.ndim)
            g = w * (eps_cfg.float() - target.float())
        extras.update({"w": w.flatten(), "s": s, "inversion_calls": inversion.calls})
        return self.inject(z, g, t, cfg.grad_clip, extras)
