"""The exact denoisers' mathematics: posterior means of Gaussian-noised finite mixtures.

Under x_t = α_t·x0 + σ_t·ε with x0 drawn from the (weighted) mixture of points y_1..y_N,

    x̂0(x_t) = Σ_i softmax_i(−‖x_t − α_t y_i‖² / (2σ_t²) + log w_i) · y_i,   ε̂ = (x_t − α_t x̂0) / σ_t

Logits are computed in float64 as (α x·y − α²‖y‖²/2)/σ² (‖x_t‖² cancels in the softmax), with a
max-subtracted softmax. `exact_denoise` takes the points as rows; `exact_clip_denoise` takes clips
whose frames live in a shared bank (index gathers, no materialised clips).

Random solid backgrounds: with `uncovered` (1 − alpha per pixel), reference i is the family
y_i(β) = F_i + u_i ⊗ β, linear in the background β ∈ [−1, 1]³ (F: the premultiplied colour). With
β's prior taken as N(0, ⅓) per channel (the variance of a uniform channel) the evidence and
E[β | x_t, i] are closed-form, so the denoiser marginalises the colour exactly.
"""

from __future__ import annotations

import torch

__all__ = ["exact_denoise", "exact_clip_denoise", "pixel_references", "RANDOM_BACKGROUND_VAR"]

RANDOM_BACKGROUND_VAR = 1.0 / 3.0  # variance of a uniform colour channel in [−1, 1] units


def exact_denoise(x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, refs: torch.Tensor,
                  log_weights: torch.Tensor | None = None, refs_sqnorm: torch.Tensor | None = None,
                  uncovered: torch.Tensor | None = None,
                  background_var: float = RANDOM_BACKGROUND_VAR) -> torch.Tensor:
    """Posterior mean of a Gaussian-noised uniform (or weighted) mixture of points.

    x [B, D] noisy inputs, alpha / sigma [B], refs [N, D], log_weights [B, N] or None,
    refs_sqnorm [N] = ‖refs‖² (optional, precomputed). Returns x̂0 [B, D] in float64.

    With `uncovered` [N, P] (1 − alpha per pixel, D = C·P, channel-major), reference i is the
    family y_i(β) = refs_i + uncovered_i ⊗ β over a solid background β ∈ R^C with prior
    N(0, background_var) per channel, integrated out exactly (see the module doc).
    """
    x = x.double()
    refs = refs.double()
    alpha, sigma = alpha.double(), sigma.double()
    if refs_sqnorm is None:
        refs_sqnorm = (refs * refs).sum(dim=-1)
    a, s2 = alpha[:, None], sigma[:, None] ** 2
    # −‖x − a y‖²/(2σ²) = (a x·y − a²‖y‖²/2)/σ² − ‖x‖²/(2σ²); the last term is constant over i.
    logits = (a * (x @ refs.T) - 0.5 * a ** 2 * refs_sqnorm.double()[None]) / s2
    if log_weights is not None:
        logits = logits + log_weights.double()
    if uncovered is None:
        weights = torch.softmax(logits, dim=-1)  # [B, N], max-subtracted internally
        return weights @ refs
    u = uncovered.double()  # [N, P]
    n, pixels = u.shape
    channels = refs.shape[1] // pixels
    x_c, refs_c = x.reshape(len(x), channels, pixels), refs.reshape(n, channels, pixels)
    # Per channel c, with r = x − a·refs_i: precision Λ = a²‖u‖²/σ² + 1/v, h = a·(u·r_c)/σ²;
    # the evidence gains Σ_c h²/(2Λ) − (C/2)·log(Λ·v) and E[β_c | x, i] = h/Λ.
    u_dot_r = torch.einsum("bcp,np->bcn", x_c, u) - a[:, :, None] * torch.einsum("ncp,np->cn", refs_c, u)[None]
    precision = a ** 2 * (u * u).sum(dim=-1)[None] / s2 + 1.0 / background_var  # [B, N]
    h = a[:, :, None] * u_dot_r / s2[:, :, None]  # [B, C, N]
    logits = logits + (h ** 2).sum(dim=1) / (2.0 * precision) - 0.5 * channels * torch.log(precision * background_var)
    weights = torch.softmax(logits, dim=-1)
    beta = h / precision[:, None, :]  # [B, C, N]
    x0 = weights @ refs + torch.einsum("bcn,np->bcp", weights[:, None, :] * beta, u).reshape(len(x), -1)
    return x0


def pixel_references(images: torch.Tensor, alpha: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(refs [N, D] in [−1, 1], uncovered [N, P] or None), float64, for `exact_denoise`: opaque images
    as they are; with alpha, the premultiplied colour (2·rgb − alpha: zero where empty) and 1 − alpha."""
    n = len(images)
    if alpha is None:
        return (images.double() * 2.0 - 1.0).reshape(n, -1), None
    alpha = alpha.double()
    return (images.double() * 2.0 - alpha).reshape(n, -1), (1.0 - alpha).reshape(n, -1)


def exact_clip_denoise(x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor,
                       clip_frames: torch.Tensor, log_weights: torch.Tensor | None = None,
                       frames_sqnorm: torch.Tensor | None = None) -> torch.Tensor:
    """Posterior mean of a Gaussian-noised (weighted) mixture of clips whose frames live in a bank.

    x [B, F, D] noisy clips, alpha / sigma [B], frames [M, D] the bank, clip_frames [N, F] long (clip n
    is frames[clip_frames[n]]), log_weights [B, N] or None, frames_sqnorm [M] = ‖frames‖² (optional).
    Equal to `exact_denoise` over the N flattened clips, without building them: the
    logit of clip n sums per-frame dot products gathered from x_f · frames, and x̂0's frame f
    scatters the clip weights back onto the bank. Returns x̂0 [B, F, D] in float64.
    """
    x, frames = x.double(), frames.double()
    alpha, sigma = alpha.double(), sigma.double()
    B, Fr, _ = x.shape
    N = clip_frames.shape[0]
    if frames_sqnorm is None:
        frames_sqnorm = (frames * frames).sum(dim=-1)
    index = clip_frames.T.to(x.device)[None].expand(B, Fr, N)  # [B, F, N]
    dots = torch.einsum("bfd,md->bfm", x, frames).gather(2, index).sum(dim=1)  # [B, N] Σ_f x_f · y_nf
    sqnorm = frames_sqnorm.double()[clip_frames.to(x.device)].sum(dim=1)  # [N] ‖y_n‖²
    # −‖x − a y‖²/(2σ²) = (a x·y − a²‖y‖²/2)/σ² − ‖x‖²/(2σ²); the last term is constant over n.
    logits = (alpha[:, None] * dots - 0.5 * alpha[:, None] ** 2 * sqnorm[None]) / sigma[:, None] ** 2
    if log_weights is not None:
        logits = logits + log_weights.double()
    weights = torch.softmax(logits, dim=-1)  # [B, N]
    on_bank = torch.zeros(B, Fr, frames.shape[0], dtype=torch.float64, device=x.device)
    on_bank.scatter_add_(2, index, weights[:, None, :].expand(B, Fr, N))
    return on_bank @ frames
