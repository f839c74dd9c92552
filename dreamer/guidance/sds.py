"""Score Distillation Sampling (DreamFusion): g = w(t)·(ε̂_s(x_t, t, y) − ε), injected into z.

With a multi-view prior (Prior.views_per_sample V > 1) this is MVDream's multi-view SDS: the renders
are sets of V views, the prior scores each set jointly and t is drawn once per set
(Guidance.encode_and_draw). `cfg_rescale` is MVDream's CFG rescale (functional.rescale_cfg); MVDream
applies it inside an x0-reconstruction loss, which equals SDS with weight α²/σ² up to a constant, so
here it enters as the rescaled ε̂ under the rule's own weighting. `chroma_guidance_scale` takes the colour
part of CFG at its own scale (functional.chroma_cfg; our addition, not in a paper); `object_colour_scale`
takes only the object's mean colour per view at its own scale, the object being the render's opacity
(functional.object_colour_cfg; our addition too); `uncond_debias` takes the prior's mean object colour out of
the unconditional estimate inside the render's opacity before CFG extrapolates from it
(functional.debias_unconditional; our addition, for the embedded priors, whose palette is warm).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import Guidance, GuidanceConfig, GuidanceOutput
from dreamer.guidance.schedules import (ANNEAL_SHAPES, AnnealedTimesteps, LinearDescendingTimesteps, TimestepSchedule,
                                        anneal)
from dreamer.priors.base import Prior, PromptEmbedding


T_SCHEDULES: tuple[str, ...] = ("random", "linear_descending")  # SDSConfig.t_schedule


@dataclass
class SDSConfig(GuidanceConfig):
    """Settings of SDS (defaults: DreamFusion)."""

    guidance_scale: float = 100.0  # CFG scale s, in `cfg_convention`
    cfg_convention: str = "standard"  # "standard": ε_u + s(ε_c−ε_u); "plus_one": ε_c + s(ε_c−ε_u)
    weighting: str = "sds"  # w(t): "sds" 1−ᾱ_t | "uniform" 1 | "fantasia" α_t σ_t² | "sigma_over_alpha" σ_t/α_t
    t_schedule: str = "random"  # "random": t ~ U[t_min, t_max(step)] | "linear_descending": t = (1 − (step+1)/steps)·T clamped to [t_min, t_max], no draw (DreamGaussian)
    t_min: float = 0.02  # lowest timestep, fraction of T
    t_max: float = 0.98  # highest timestep at the start, fraction of T
    t_anneal: float | None = None  # "random" only: t_max moves to this by t_anneal_by; None = no anneal
    t_anneal_by: float = 0.2  # fraction of training at which the anneal of t_max ends
    t_anneal_shape: str = "linear"  # "linear": t_max falls from step 0 | "hold_then_drop": t_max held until t_anneal_by, then t_anneal
    grad_clip: float | None = None  # elementwise clip of g after the NaN guard; None = off
    view_dependent_prompt: bool = True  # use "…, front/side/back/overhead view" embeddings when available
    cfg_rescale: float = 0.0  # MVDream's CFG rescale (recon_std_rescale): match x̂0's std with CFG to without it, 0 = off
    chroma_guidance_scale: float | None = None  # CFG scale of the colour part only (functional.chroma_cfg); None = guidance_scale; pixel-space priors only
    object_colour_scale: float | None = None  # CFG scale of the object's mean colour per view, weighted by the render's opacity (functional.object_colour_cfg); None = guidance_scale; pixel-space priors only
    uncond_debias: float = 0.0  # share of the prior's mean object colour (its chroma) taken out of the unconditional estimate where the render is opaque, before CFG (functional.debias_unconditional); 0 = off; acts only with priors that know their mean object colour (the embedded pixel priors), does nothing with the others

    def __post_init__(self) -> None:
        for name in ("chroma_guidance_scale", "object_colour_scale"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise UserError(f"sds.{name} must be >= 0 or null, got {getattr(self, name)}")
        if self.uncond_debias < 0:
            raise UserError(f"sds.uncond_debias must be >= 0, got {self.uncond_debias}")
        if not 0.0 <= self.cfg_rescale <= 1.0:
            raise UserError(f"sds.cfg_rescale must lie in [0, 1], got {self.cfg_rescale}")
        if self.cfg_convention not in F.CFG_CONVENTIONS:
            raise UserError(f"sds.cfg_convention must be one of {F.CFG_CONVENTIONS}, got {self.cfg_convention!r}")
        if self.weighting not in F.WEIGHT_KINDS:
            raise UserError(f"sds.weighting must be one of {F.WEIGHT_KINDS}, got {self.weighting!r}")
        if not 0.0 <= self.t_min <= self.t_max <= 1.0:
            raise UserError(f"sds needs 0 <= t_min <= t_max <= 1, got t_min={self.t_min}, t_max={self.t_max}")
        if self.t_anneal is not None and not self.t_min <= self.t_anneal <= 1.0:
            raise UserError(f"sds.t_anneal must lie in [t_min, 1], got {self.t_anneal}")
        if not 0.0 < self.t_anneal_by <= 1.0:
            raise UserError(f"sds.t_anneal_by must lie in (0, 1], got {self.t_anneal_by}")
        F.check_choice("sds", "t_schedule", self.t_schedule, T_SCHEDULES)
        F.check_choice("sds", "t_anneal_shape", self.t_anneal_shape, ANNEAL_SHAPES)
        if self.t_schedule == "linear_descending" and self.t_anneal is not None:
            raise UserError("sds.t_anneal applies to t_schedule 'random' only; set it to null for 'linear_descending'")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UserError(f"sds.grad_clip must be positive or null, got {self.grad_clip}")

    @property
    def uses_alpha(self) -> bool:
        """The object colour and the unconditional debias need the renders' opacity as their mask."""
        return self.object_colour_scale is not None or self.uncond_debias > 0

    @property
    def separate_colour_scale(self) -> bool:
        """Whether a part of CFG's colour is taken at a scale of its own (then both CFG halves are computed)."""
        return self.chroma_guidance_scale is not None or self.object_colour_scale is not None

    def timestep_schedule(self, num_train_timesteps: int, total_steps: int) -> TimestepSchedule:
        """"random": U[t_min, t_max(step)]·T, t_max annealed when `t_anneal` is set;
        "linear_descending": the deterministic DreamGaussian schedule between t_min and t_max."""
        if self.t_schedule == "linear_descending":
            return LinearDescendingTimesteps(num_train_timesteps, total_steps, self.t_min, self.t_max)
        t_max = self.t_max if self.t_anneal is None else anneal(self.t_anneal_shape, self.t_max, self.t_anneal,
                                                                self.t_anneal_by)
        return AnnealedTimesteps(num_train_timesteps, total_steps, self.t_min, t_max)


class SDS(Guidance):
    """Score distillation sampling.

    Per call, in this order: t [B] from the timestep schedule (nothing is drawn for t under
    "linear_descending"), then ε (shape of z) from the generator (both drawn on the CPU). Cameras reach the prior only when it is
    camera-conditioned; they choose the view-dependent prompt when `view_dependent_prompt`.
    Loss gradient on z is g / B (functional.inject_gradient).
    """

    def __init__(self, config: SDSConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__(prior, total_steps, generator)
        self.config = config
        self.schedule = config.timestep_schedule(prior.num_train_timesteps, total_steps)
        if config.separate_colour_scale and prior.latent_shape[0] != 3:
            name = "chroma_guidance_scale" if config.chroma_guidance_scale is not None else "object_colour_scale"
            raise UserError(f"sds.{name} needs a prior that denoises RGB pixels; {type(prior).__name__} "
                            f"works on {prior.latent_shape[0]}-channel latents (set it to null)")
        # the lean to take out: known for the embedded pixel priors only; with any other prior (a user who picks
        # `reference` or Stable Diffusion with the default preset) there is no known lean and nothing is moved
        known = config.uncond_debias > 0 and prior.latent_shape[0] == 3
        self.mean_colour = prior.mean_object_colour() if known else None

    def adjust_prediction(self, eps_cfg: torch.Tensor) -> torch.Tensor:
        """The guided prediction as the rule uses it (SDS: unchanged; video SDS: motion-amplified)."""
        return eps_cfg

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int, depth: torch.Tensor | None = None, alpha: torch.Tensor | None = None) -> GuidanceOutput:
        """`depth` is accepted for the common contract and not used (SDS declares no `uses_depth`); `alpha`
        [B, H, W, 1] (clips: [B, F, H, W, 1]), the renders' opacity, is needed with `object_colour_scale` or
        `uncond_debias`."""
        cfg = self.config
        z, t, eps = self.encode_and_draw(images, step)
        ac = self.prior.alphas_cumprod

        with torch.no_grad():
            x_t = F.add_noise(z.detach(), eps, t, ac)
            if cfg.guidance_scale == 1.0 and cfg.cfg_convention == "standard" and not cfg.separate_colour_scale:
                # CFG at scale 1 is the conditional prediction: skip the unconditional half.
                eps_cfg = F.predict_conditional(self.prior, x_t, t, embedding, cameras, cfg.view_dependent_prompt)
            else:
                eps_cfg, eps_cond, eps_uncond = F.predict_cfg(self.prior, x_t, t, embedding, cameras, cfg.guidance_scale,
                                                              cfg.cfg_convention, cfg.view_dependent_prompt)
                eps_cfg = F.chroma_cfg(eps_cfg, eps_cond, eps_uncond, cfg.chroma_guidance_scale)
                if cfg.object_colour_scale is not None:
                    if alpha is None:
                        raise ValueError("sds.object_colour_scale needs the renders' opacity: pass alpha=")
                    opacity = F.resize_opacity(alpha, tuple(z.shape[-2:]))
                    eps_cfg = F.object_colour_cfg(eps_cfg, eps_cond, eps_uncond, opacity, cfg.object_colour_scale)
                if self.mean_colour is not None:
                    if alpha is None:
                        raise ValueError("sds.uncond_debias needs the renders' opacity: pass alpha=")
                    a_t, s_t = F.alphas_sigmas(ac, t, z.ndim)
                    eps_cfg = F.debias_unconditional(eps_cfg, a_t, s_t, F.resize_opacity(alpha, tuple(z.shape[-2:])),
                                                     self.mean_colour, cfg.guidance_scale, cfg.cfg_convention,
                                                     cfg.uncond_debias)
                eps_cfg = F.rescale_cfg(x_t, eps_cfg, eps_cond, t, ac, self.prior.views_per_sample, cfg.cfg_rescale)
            eps_cfg = self.adjust_prediction(eps_cfg)
            w = F.weight(t, ac, cfg.weighting, z.ndim)  # [B, 1, 1, 1]
            g = w * (eps_cfg.float() - eps.float())  # [B, C, h, w] float32

        extras = {
            "w": w.flatten(),  # [B] timestep weights
            "eps_pred_norm": eps_cfg.float().flatten(1).norm(dim=1).mean(),  # ‖ε̂_cfg‖ batch mean
        }
        return self.inject(z, g, t, cfg.grad_clip, extras)
