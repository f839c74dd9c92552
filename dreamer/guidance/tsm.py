"""Trajectory Score Matching (Dreamer XL): ISM's inversion with a second path for the target.

From ISM's x_s (inverted with ε̂_s = ε_φ(x_s, s, ∅)), path A steps x_s → x_t (the teacher's
input, as in ISM); path B steps x_s → x_μ with μ = s + (t − s)·√(1 − γ²), and the target is
ε_φ(x_μ, μ, ∅):

    g = λ_g·(σ_t/α_t)·(ε̂_s(x_t, t, y) − ε_φ(x_μ, μ, ∅)).

At γ = 1, μ = s and the target is ISM's ε̂_s. Defaults (Dreamer XL): a per-pixel clip (0.05) of
the gradient on the image at the prior's input size (1,024 px for SDXL, the render upsampled to
it), δ_T 100 → 80 over the warm-up of 30 % (750 of 2,500 steps), then held. Three of the four
Dreamer XL configs use 80; the fourth, 250, goes with a custom SDXL fine-tune.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.inversion import Inversion
from dreamer.guidance.ism import ISM, ISMConfig


@dataclass
class TSMConfig(ISMConfig):
    """Settings of TSM (defaults: Dreamer XL)."""

    gamma: float = 0.3  # μ = s + (t − s)·√(1 − γ²); γ = 1 gives ISM's target
    pixel_clip: float | None = 0.05  # per-pixel clip at the prior's input size (Dreamer XL)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.gamma <= 1.0:
            raise UserError(f"tsm.gamma must lie in [0, 1], got {self.gamma}")


class TSM(ISM):
    """Trajectory score matching (ISM with the path-B target)."""

    def target(self, inversion: Inversion, s: torch.Tensor, t: torch.Tensor, empty: torch.Tensor,
               cameras: Camera | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        ac = self.prior.alphas_cumprod
        x_t = F.ddim_step(inversion.x_s, inversion.eps_s, s, t, ac)
        mu = (s + ((t - s).double() * math.sqrt(1.0 - self.config.gamma ** 2)).round().long()).clamp(max=t.max())
        if bool((mu == s).all()):
            return x_t, inversion.eps_s, {"mu": mu}
        x_mu = F.ddim_step(inversion.x_s, inversion.eps_s, s, mu, ac)
        return x_t, F.predict_eps(self.prior, x_mu, mu, empty, cameras), {"mu": mu}
