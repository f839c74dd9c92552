"""Variational Score Distillation (ProlificDreamer), and its entropy-regularised form ESD.

    g = w(t)·(ε̂_s(x_t, t, y) − ε̂_lora(x_t, t, y, c))                         (VSD)
    g = w(t)·(ε̂_s(x_t, t, y) − λ·ε̂_lora(x_t, t, y, ∅) − (1 − λ)·ε̂_lora(x_t, t, y, c))   (ESD, λ = entropy_weight)

ε̂_lora is the particle model (dreamer.guidance.particle): a LoRA copy of the prior's network with
a camera embedding (a zero-initialised residual on the prior for the network-free reference
prior), trained on the same batch at every step — τ ~ U{0 … T−1},
x_τ = α_τ·sg(z) + σ_τ·ε′, MSE of its raw output to the prior's own target (ε′, or v for
v-prediction priors), camera dropped with probability `camera_dropout` (the camera-free
branch ESD uses). Its loss is added to the returned loss; it reaches only the LoRA and camera
parameters (z is detached there), which the trainer optimises at `lora_lr`.
Text: the frozen prior's CFG term gets the view-dependent prompt ("…, back view") when
`view_dependent_prompt` is on; the particle model gets the plain prompt, both in ε̂_lora and in its
own training, as in threestudio's VSD (the camera reaches it through its camera embedding, and
ESD's camera-free branch is meant to model the view-averaged distribution, which a view suffix
would defeat). `particle_view_dependent` restores the view-dependent text for the particle model.
Random draws, in order: t [B], ε, τ [B], ε′, camera-drop flags [B].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import Guidance, GuidanceConfig, GuidanceOutput
from dreamer.guidance.particle import make_particle
from dreamer.guidance.schedules import ANNEAL_SHAPES, AnnealedTimesteps, anneal
from dreamer.priors.base import Prior, PromptEmbedding


@dataclass
class VSDConfig(GuidanceConfig):
    """Settings of VSD (defaults: ProlificDreamer)."""

    guidance_scale: float = 7.5  # CFG scale of the pretrained term, in `cfg_convention`
    cfg_convention: str = "standard"  # "standard": ε_u + s(ε_c−ε_u); "plus_one": ε_c + s(ε_c−ε_u)
    weighting: str = "sds"  # w(t) = 1 − ᾱ_t
    t_min: float = 0.02  # lower bound of t, fraction of T
    t_max: float = 0.98  # upper bound of t at the start
    t_anneal: float | None = 0.5  # the upper bound anneals to this by `t_anneal_by`; None = no anneal
    t_anneal_by: float = 0.2  # fraction of training at which the upper bound reaches `t_anneal`
    t_anneal_shape: str = "linear"  # "linear": the bound falls from step 0 to reach t_anneal at t_anneal_by; "hold_then_drop": held at t_max until t_anneal_by, then t_anneal (threestudio)
    lora_rank: int = 4  # rank of the LoRA adapters on the attention projections
    lora_lr: float = 1e-4  # learning rate of the particle model (LoRA + camera embedding)
    camera_dropout: float = 0.1  # probability of training the particle model without the camera
    entropy_weight: float = 0.0  # λ: weight of the camera-free branch (ESD); 0 = VSD
    particles: int = 1  # n 3D particles sharing the LoRA (dreamer.representations.particles); 1 = one asset
    grad_clip: float | None = None  # elementwise clip of g; None = off
    view_dependent_prompt: bool = True  # the frozen prior's conditional term uses "…, front/side/back/overhead view"
    particle_view_dependent: bool = False  # the particle model gets the view-dependent text too (off: the plain
    # prompt, as threestudio's VSD does; on: the behaviour before issue 21; needs view_dependent_prompt)

    @property
    def trainable_lr(self) -> float:
        return self.lora_lr  # the particle model (LoRA + camera embedding)

    @property
    def particle_count(self) -> int:
        return self.particles

    @property
    def takes_clips(self) -> bool:
        return False  # the particle model is a LoRA of an image network

    @property
    def takes_view_sets(self) -> bool:
        return False  # the particle model learns single renders with its own camera dropout per render

    def __post_init__(self) -> None:
        rule = type(self).__name__.removesuffix("Config").lower()
        F.check_choice(rule, "cfg_convention", self.cfg_convention, F.CFG_CONVENTIONS)
        F.check_choice(rule, "weighting", self.weighting, F.WEIGHT_KINDS)
        F.check_timestep_range(rule, self.t_min, self.t_max)
        if self.t_anneal is not None:
            F.check_timestep_range(rule, self.t_min, self.t_anneal)
        if not 0.0 < self.t_anneal_by <= 1.0:
            raise UserError(f"{rule}.t_anneal_by must lie in (0, 1], got {self.t_anneal_by}")
        F.check_choice(rule, "t_anneal_shape", self.t_anneal_shape, ANNEAL_SHAPES)
        if isinstance(self.particles, bool) or not isinstance(self.particles, int) or not 1 <= self.particles <= 16:
            raise UserError(f"{rule}.particles must be an integer from 1 to 16, got {self.particles!r}")
        if self.lora_rank < 1 or self.lora_lr <= 0:
            raise UserError(f"{rule}: lora_rank must be >= 1 and lora_lr > 0")
        for key in ("camera_dropout", "entropy_weight"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"{rule}.{key} must lie in [0, 1], got {getattr(self, key)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UserError(f"{rule}.grad_clip must be positive or null, got {self.grad_clip}")


class VSD(Guidance):
    """Variational score distillation with one LoRA particle model (ESD when entropy_weight > 0)."""

    def __init__(self, config: VSDConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        if prior.is_video:
            raise UserError(f"{type(self).__name__.lower()} fine-tunes an image network and does not run on clips: "
                            f"the {type(prior).__name__} is a video prior; use sds, video-sds, ism, tsm or asd")
        super().__init__(prior, total_steps, generator)
        self.config = config
        c = config
        t_max = c.t_max if c.t_anneal is None else anneal(c.t_anneal_shape, c.t_max, c.t_anneal, c.t_anneal_by)
        self.schedule = AnnealedTimesteps(prior.num_train_timesteps, total_steps, c.t_min, t_max)
        self.particle = make_particle(prior, c.lora_rank)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.particle.trainable_parameters()

    def particle_text(self, embedding: PromptEmbedding, cameras: Camera, batch: int) -> torch.Tensor:
        """[B, ...] text for the particle model: the plain prompt unless `particle_view_dependent`."""
        view_dependent = self.config.particle_view_dependent and self.config.view_dependent_prompt
        return embedding.conditional(cameras if view_dependent else None, batch)

    def particle_eps(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, cameras: Camera) -> torch.Tensor:
        """λ·ε̂_lora(·, ∅) + (1 − λ)·ε̂_lora(·, c), float32, no grad."""
        lam = self.config.entropy_weight
        eps = self.particle.predict_eps(x_t, t, text, cameras) if lam < 1 else 0.0
        if lam > 0:
            eps = lam * self.particle.predict_eps(x_t, t, text, None) + (1 - lam) * eps
        return eps

    def particle_loss(self, z: torch.Tensor, text: torch.Tensor, cameras: Camera) -> torch.Tensor:
        """The particle model's denoising loss on the detached batch (full-range τ, camera dropout)."""
        batch, T = z.shape[0], self.prior.num_train_timesteps
        tau = torch.randint(0, T, (batch,), generator=self.generator).to(z.device)
        noise = torch.randn(z.shape, generator=self.generator).to(z.device, torch.float32)
        keep = torch.rand(batch, generator=self.generator) >= self.config.camera_dropout
        z0 = z.detach().float()
        x_tau = F.add_noise(z0, noise, tau, self.prior.alphas_cumprod)
        target = self.prior.training_target(z0, noise, tau)
        loss = z0.new_zeros(())
        for kept in (True, False):  # the camera-free samples go through the camera-free branch
            rows = (keep == kept).nonzero().flatten()
            if rows.numel() == 0:
                continue
            cams = cameras[rows.tolist()] if kept else None
            out = self.particle.output(x_tau[rows], tau[rows], text[rows], cams)
            loss = loss + (out - target[rows]).pow(2).flatten(1).mean(1).sum() / batch
        return loss

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int) -> GuidanceOutput:
        cfg = self.config
        z, t, eps = self.encode_and_draw(images, step)
        ac = self.prior.alphas_cumprod
        text = self.particle_text(embedding, cameras, z.shape[0])

        with torch.no_grad():
            x_t = F.add_noise(z.detach(), eps, t, ac)
            eps_cfg, _, _ = F.predict_cfg(self.prior, x_t, t, embedding, cameras, cfg.guidance_scale,
                                          cfg.cfg_convention, cfg.view_dependent_prompt)
            eps_lora = self.particle_eps(x_t, t, text, cameras)
            w = F.weight(t, ac, cfg.weighting, z.ndim)
            g = w * (eps_cfg.float() - eps_lora)
        out = self.inject(z, g, t, cfg.grad_clip, {"w": w.flatten()})
        particle_loss = self.particle_loss(z, text, cameras)  # reaches only the particle model
        out.loss = out.loss + particle_loss
        out.extras["particle_loss"] = particle_loss.detach()
        return out
