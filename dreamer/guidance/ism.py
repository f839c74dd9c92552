"""Interval Score Matching (LucidDreamer).

x_s comes from a deterministic DDIM inversion of z with the unconditional ("inverse text",
the empty prompt) prediction up to s = t − δ_T (dreamer.guidance.inversion), then one more
inversion step s → t gives x_t. The target is the inversion's own ε̂_s = ε_φ(x_s, s, ∅) instead
of SDS's random ε:

    g = λ_g·(σ_t/α_t)·(ε̂_s(x_t, t, y; uncond = negative prompt) − ε̂_s).

Timesteps: t ~ U[t_min, t_max(p)] with t_max falling from t_max_start to t_max over the first
`warmup` of training (LucidDreamer: 1,500 of 5,000 steps, 30 %); δ_T moves linearly from
delta_t_start to delta_t_end over the same warm-up, then holds (LucidDreamer's `warm_up_rate`
drives both; `delta_t_anneal_by` can set another span). Timesteps on a 1000-step schedule; scaled
for other T.

Options of LucidDreamer's published recipe, all off by default:
  - `flip_probability`: the batch of renders (and its depth) is flipped left-right with this
    probability, one draw per step for the whole batch (torchvision's RandomHorizontalFlip on
    the batch, as LucidDreamer's `augmentation`);
  - `depth_ratio`: on this fraction of steps (a draw per step) the normalised disparity of the
    renders (`functional.depth_image`) is encoded instead of their colour: the gradient then
    reaches the geometry through the depth only. Needs the depth: the config declares
    `uses_depth` and the trainer passes `depth=`;
  - `noise_offset`: ε gets an offset of noise_offset·N(0, 1) per channel, [1, C, 1, 1], the same
    for every sample of the batch (LucidDreamer: randn + 0.1·randn(1, 4, 1, 1)). It reaches the
    inversion's first noising and so every later step.

Per-pixel clip (`pixel_clip`, TSM): the renders are first upsampled to the prior's input size
(`functional.upsample_to`), so the clip acts on the gradient of the image the prior encodes, as
Dreamer XL's (see `functional.pixelwise_clip` for why that is exact and a scaled threshold is not).
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
    warmup: float = 0.3  # fraction of training over which t's upper bound falls to t_max (LucidDreamer 1,500/5,000)
    delta_t_start: int = 100  # δ_T = t − s at the start, timesteps of a 1000-step schedule
    delta_t_end: int = 80  # δ_T from the end of its anneal on
    delta_t_anneal_by: float | None = None  # fraction of training at which δ_T reaches delta_t_end; None = `warmup`
    stride: int = 200  # inversion stride (LucidDreamer's xs_delta_t), timesteps of a 1000-step schedule
    grad_clip: float | None = None  # elementwise clip of g; None = off
    pixel_clip: float | None = None  # per-pixel clip of the gradient on the image at the prior's input size (TSM); None = off
    noise_offset: float = 0.0  # std of a per-channel offset [1, C, 1, 1] added to ε, shared by the batch (LucidDreamer 0.1)
    depth_ratio: float = 0.0  # probability per step of encoding the renders' depth instead of their colour (LucidDreamer 0.2)
    flip_probability: float = 0.0  # probability per step of flipping the whole batch left-right (LucidDreamer 0.5)
    view_dependent_prompt: bool = True

    @property
    def uses_depth(self) -> bool:
        return self.depth_ratio > 0  # the depth steps encode the renders' depth

    @property
    def takes_view_sets(self) -> bool:
        return self.flip_probability == 0  # a mirrored view no longer matches its camera's raymap

    def __post_init__(self) -> None:
        rule = type(self).__name__.removesuffix("Config").lower()
        F.check_choice(rule, "cfg_convention", self.cfg_convention, F.CFG_CONVENTIONS)
        F.check_timestep_range(rule, self.t_min, self.t_max)
        F.check_timestep_range(rule, self.t_min, self.t_max_start)
        for key in ("warmup", "depth_ratio", "flip_probability"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"{rule}.{key} must lie in [0, 1], got {getattr(self, key)}")
        if self.delta_t_anneal_by is not None and not 0.0 <= self.delta_t_anneal_by <= 1.0:
            raise UserError(f"{rule}.delta_t_anneal_by must lie in [0, 1] or be null, got {self.delta_t_anneal_by}")
        if self.noise_offset < 0:
            raise UserError(f"{rule}.noise_offset must be >= 0, got {self.noise_offset}")
        if self.delta_t_start < 0 or self.delta_t_end < 0 or self.stride < 1:
            raise UserError(f"{rule}: delta_t_start/delta_t_end must be >= 0 and stride >= 1")
        for key in ("grad_clip", "pixel_clip"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise UserError(f"{rule}.{key} must be positive or null, got {value}")


class ISM(Guidance):
    """Interval score matching.

    Draws, in order: the flip coin (only when flip_probability > 0), the depth coin (only when
    depth_ratio > 0), t [B], ε (shape of z), the noise offset [1, C, 1, 1] (only when noise_offset > 0).
    """

    def __init__(self, config: ISMConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__(prior, total_steps, generator)
        self.config = config
        c = config
        warm = Schedule.linear(c.t_max_start, c.t_max, c.warmup) if c.warmup > 0 else c.t_max
        self.schedule = AnnealedTimesteps(prior.num_train_timesteps, total_steps, c.t_min, warm)
        delta_by = c.warmup if c.delta_t_anneal_by is None else c.delta_t_anneal_by
        self._delta = Schedule.linear(c.delta_t_start, c.delta_t_end, delta_by)

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

    def _coin(self, probability: float) -> bool:
        """True with `probability`; one draw from the generator when probability > 0, none otherwise."""
        return bool(torch.rand((), generator=self.generator) < probability) if probability > 0 else False

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int, depth: torch.Tensor | None = None) -> GuidanceOutput:
        """images [B, H, W, 3]; depth [B, H, W, 1] (needed when depth_ratio > 0, see the module doc)."""
        cfg = self.config
        flipped = self._coin(cfg.flip_probability)
        use_depth = self._coin(cfg.depth_ratio)
        if use_depth:
            if depth is None:
                raise ValueError(f"{type(self).__name__} with depth_ratio > 0 needs the renders' depth (depth=)")
            images = F.depth_image(depth)
        if flipped:
            images = images.flip(-2)  # left-right: W is dim −2 of [B, H, W, C] (and of clips [B, F, H, W, C])
        clip = None
        if cfg.pixel_clip is not None:  # clip at the prior's input size (module doc)
            images = F.upsample_to(images, self.prior.image_size)
            clip = lambda grad: F.pixelwise_clip(grad, cfg.pixel_clip)  # noqa: E731
        z, t, eps = self.encode_and_draw(images, step, pixel_hook=clip)
        if cfg.noise_offset > 0:
            offset = torch.randn((1,) * (z.ndim - 3) + (z.shape[-3], 1, 1), generator=self.generator)  # per channel
            eps = eps + cfg.noise_offset * offset.to(eps.device, eps.dtype)
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
        extras.update({"w": w.flatten(), "s": s, "inversion_calls": inversion.calls, "flipped": flipped,
                       "depth_step": use_depth})
        return self.inject(z, g, t, cfg.grad_clip, extras)
