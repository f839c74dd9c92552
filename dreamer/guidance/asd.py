"""Asynchronous Score Distillation (ScaleDreamer).

g = w(t)·(ε̂_s(x_t, t, y) − ε_φ(x_{t+Δ}, t+Δ, y)), with x_t and x_{t+Δ} built from the same z
and the same ε, Δ = ⌊u·min(η·(t − t_min), T − 1 − t)⌋, u ~ U(0, 1). The cap T − 1 − t comes before
the draw u, as in ScaleDreamer's code, so t + Δ is spread evenly below T − 1 instead of piling up
there (clamping t + Δ after the draw would put every overshoot on t = T − 1). The second
term is the plain text-conditional prediction at a *noisier* timestep (Δ is added, never
subtracted): no CFG, no fine-tuning. It replaces SDS's ε, whose mismatch with the prior's own
prediction is what makes SDS over-saturate. With η = 0 only w·(s − 1)·(ε_c − ε_u) is left: the
classifier-score term.

Timesteps: t ~ U[t_min(p), t_max(p)] with both bounds moving linearly over training progress p
from [0.5, 0.98] to [0.02, 0.5] (the paper's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import Guidance, GuidanceConfig, GuidanceOutput, per_view
from dreamer.guidance.schedules import AnnealedTimesteps, Schedule
from dreamer.priors.base import Prior, PromptEmbedding


@dataclass
class ASDConfig(GuidanceConfig):
    """Settings of ASD (defaults: ScaleDreamer)."""

    guidance_scale: float = 7.5  # CFG scale s of the first term, in `cfg_convention`
    cfg_convention: str = "standard"  # "standard": ε_u + s(ε_c−ε_u); "plus_one": ε_c + s(ε_c−ε_u)
    eta: float = 0.1  # Δ = ⌊u·min(η·(t − t_min), T − 1 − t)⌋: how much noisier the second term's timestep is
    weighting: str = "sds"  # w(t), as SDS's
    t_min_start: float = 0.5  # lower bound of t at the start, fraction of T
    t_max_start: float = 0.98  # upper bound of t at the start
    t_min_end: float = 0.02  # lower bound at the end of the anneal
    t_max_end: float = 0.5  # upper bound at the end of the anneal
    anneal_by: float = 1.0  # fraction of training at which the bounds reach their end values
    grad_clip: float | None = None  # elementwise clip of g; None = off
    view_dependent_prompt: bool = True  # "…, front/side/back/overhead view" embeddings when available

    def __post_init__(self) -> None:
        F.check_choice("asd", "cfg_convention", self.cfg_convention, F.CFG_CONVENTIONS)
        F.check_choice("asd", "weighting", self.weighting, F.WEIGHT_KINDS)
        F.check_timestep_range("asd", self.t_min_start, self.t_max_start)
        F.check_timestep_range("asd", self.t_min_end, self.t_max_end)
        if self.eta < 0:
            raise UserError(f"asd.eta must be >= 0, got {self.eta}")
        if not 0.0 < self.anneal_by <= 1.0:
            raise UserError(f"asd.anneal_by must lie in (0, 1], got {self.anneal_by}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UserError(f"asd.grad_clip must be positive or null, got {self.grad_clip}")


class ASD(Guidance):
    """Asynchronous score distillation. Draws, in order: t [B], ε (shape of z), u [B]."""

    def __init__(self, config: ASDConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__(prior, total_steps, generator)
        self.config = config
        c = config
        self.schedule = AnnealedTimesteps(prior.num_train_timesteps, total_steps,
                                          Schedule.linear(c.t_min_start, c.t_min_end, c.anneal_by),
                                          Schedule.linear(c.t_max_start, c.t_max_end, c.anneal_by))

    def shifted_timesteps(self, t: torch.Tensor, step: int, u: torch.Tensor) -> torch.Tensor:
        """t + Δ with Δ = ⌊u·min(η·(t − t_min), T − 1 − t)⌋ ([B] long, within [1, T − 1]).

        The largest shift is capped at T − 1 − t before it is scaled by u, so near T the shift
        stays uniform over what is left of the schedule rather than being clamped onto T − 1.
        """
        last = self.prior.num_train_timesteps - 1
        t_min = self.schedule.bounds(step)[0]
        largest = (self.config.eta * (t - t_min).clamp_min(0).double()).minimum((last - t).clamp_min(0).double())
        delta = torch.floor(u.to(t.device) * largest).long()
        return (t + delta).clamp(1, last)  # the lower clamp only matters for t = 0

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int) -> GuidanceOutput:
        cfg = self.config
        z, t, eps = self.encode_and_draw(images, step)
        batch = z.shape[0]
        u = per_view(torch.rand(self.samples(batch), generator=self.generator, dtype=torch.float64),
                     self.prior.views_per_sample)  # one shift per view set
        t_shift = self.shifted_timesteps(t, step, u)
        ac = self.prior.alphas_cumprod

        with torch.no_grad():
            x_t = F.add_noise(z.detach(), eps, t, ac)
            x_shift = F.add_noise(z.detach(), eps, t_shift, ac)
            cond = embedding.conditional(cameras if cfg.view_dependent_prompt else None, batch)
            uncond = embedding.unconditional(batch)
            eps_c, eps_u, eps_shift = F.predict_many(
                self.prior, [(x_t, t, cond, cameras), (x_t, t, uncond, cameras), (x_shift, t_shift, cond, cameras)])
            eps_cfg = F.classifier_free_guidance(eps_u, eps_c, cfg.guidance_scale, cfg.cfg_convention)
            w = F.weight(t, ac, cfg.weighting, z.ndim)
            g = w * (eps_cfg.float() - eps_shift.float())
        return self.inject(z, g, t, cfg.grad_clip, {"w": w.flatten(), "t_shift": t_shift})
