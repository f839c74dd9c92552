"""Deterministic DDIM inversion with the unconditional prediction — ISM's and TSM's x_s.

From x_{i0} = α_{i0} z + σ_{i0} ε with i0 = 0, the latent is moved up in strides of `stride`
timesteps (x_b = α_b x̂0 + σ_b ε̂_a with ε̂_a = ε_φ(x_a, a, ∅)) until it reaches s. Every
sample of the batch has its own s; a sample that has arrived stays put (a DDIM move a → a is
the identity). Costs ⌈max(s)/stride⌉ prior calls plus one for ε̂_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.guidance import functional as F
from dreamer.priors.base import Prior


@dataclass
class Inversion:
    x_s: torch.Tensor  # [B, C, h, w] the inverted latent at s
    eps_s: torch.Tensor  # [B, C, h, w] ε_φ(x_s, s, ∅)
    calls: int  # prior calls spent (including the one for eps_s)


@torch.no_grad()
def invert(prior: Prior, z: torch.Tensor, eps: torch.Tensor, s: torch.Tensor, stride: int,
           empty: torch.Tensor, cameras: Camera | None) -> Inversion:
    """DDIM-invert z (no graph) from timestep 0 to s [B] in strides of `stride` with embeddings `empty` [B, ...]."""
    if stride < 1:
        raise ValueError(f"inversion stride must be >= 1, got {stride}")
    ac = prior.alphas_cumprod
    cur = torch.zeros_like(s)
    x = F.add_noise(z, eps, cur, ac)
    calls = 0
    while bool((cur < s).any()):
        nxt = torch.minimum(cur + stride, s)
        eps_a = F.predict_eps(prior, x, cur, empty, cameras)
        x = F.ddim_step(x, eps_a, cur, nxt, ac)
        cur = nxt
        calls += 1
    return Inversion(x, F.predict_eps(prior, x, s, empty, cameras), calls + 1)
