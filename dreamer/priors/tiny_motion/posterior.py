"""The exact posterior mean over a clip's start phase: a lower-variance training target for `tiny-motion`.

A training clip is one loop of a bank row (one object, motion, camera and colour) from a start phase p drawn
uniformly from the bank's P phases, over one background. Given that row and background, the P candidate clips
Y_j (every start phase) are known, so the denoiser's ideal answer at noise level t is exact:

    x̂0*(x_t) = Σ_j softmax_j(−‖x_t − α_t Y_j‖² / (2σ_t²)) · Y_j

At low t the softmax picks the true phase (x̂0* = x0, the usual target); at high t, where the motion is decided,
it is the average over the phases that x_t cannot tell apart. Regressing onto it instead of onto the one drawn
clip (the issue's "distillation" candidate: the exact denoiser of the clip family, not `reference-video`'s
fixed orbit) removes the phase's share of the target's variance, the share that is all about motion.
"""

from __future__ import annotations

import torch


def phase_posterior_x0(x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                       candidates: torch.Tensor) -> torch.Tensor:
    """x̂0* [B, F, C, S, S] from the noisy clips x_t [B, F, C, S, S], α_t and σ_t [B, 1, 1, 1, 1] and the
    candidate clean clips [B, P, F, C, S, S] (every start phase; module doc). Independent noise per pixel."""
    a, s = alpha[:, None], sigma[:, None]  # [B, 1, 1, 1, 1, 1]: broadcast over the candidates
    dist = (x_t[:, None].float() - a * candidates.float()).pow(2).flatten(2).sum(2)  # [B, P]
    logits = -dist / (2.0 * s.flatten(1).pow(2))
    weights = torch.softmax(logits, dim=1)  # [B, P]
    return torch.einsum("bp,bp...->b...", weights, candidates.float()).to(x_t.dtype)


def v_target(x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, x0_target: torch.Tensor) -> torch.Tensor:
    """The v-prediction whose implied x̂0 (α x_t − σ v) is `x0_target`: (α x_t − x̂0) / σ. For x0_target the clip
    that was noised, this is the usual v = α ε − σ x0."""
    return (alpha * x_t - x0_target) / sigma
