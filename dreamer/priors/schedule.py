"""Noise-schedule math, written once: ᾱ_t as diffusers computes it, (α_t, σ_t), and the ε / v / x0 conversions.

Notation (METHODS.md): ᾱ_t = alphas_cumprod[t], α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t),
x_t = α_t x0 + σ_t ε, and the velocity v = α_t ε − σ_t x0 (diffusers' `get_velocity`). Hence

    x0 = (x_t − σ ε) / α        ε = (x_t − α x0) / σ        ε = σ x_t + α v

This is the lowest layer that needs the schedule (priors, the tiny prior's training); guidance
imports it from here. diffusers is not imported: `make_alphas_cumprod` repeats its DDPMScheduler's ᾱ_t
exactly (tested against it).
"""

from __future__ import annotations

import torch

# The β range each named schedule usually comes with (diffusers' DDPMScheduler names).
BETA_RANGES: dict[str, tuple[float, float]] = {
    "linear": (1e-4, 0.02),  # DDPM (pixel space)
    "scaled_linear": (0.00085, 0.012),  # Stable Diffusion (latent space)
}
BETA_SCHEDULES: tuple[str, ...] = tuple(BETA_RANGES)
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")


# ----------------------------------------------------------------------------- ᾱ, α, σ

def _alphas_cumprod(num_train_timesteps: int, beta_schedule: str, beta_start: float, beta_end: float) -> torch.Tensor:
    """diffusers' `DDPMScheduler.alphas_cumprod`, op for op (float32 β, then a cumulative product).

    Written out because importing diffusers costs about 2 s of CPU in every process that builds a prior,
    and many of them (a run with the default `tiny-3d` or the `reference` prior, in the CLI, the UI app or a
    batch or distributed worker) otherwise never import it; tests/test_schedule_diffusers.py checks it against
    the scheduler itself, bit for bit.
    """
    if beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    else:  # "scaled_linear": linear in √β (Stable Diffusion's)
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def make_alphas_cumprod(num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                        beta_start: float | None = None, beta_end: float | None = None) -> torch.Tensor:
    """ᾱ_t [T] float32 on the CPU (a fresh tensor): exactly `DDPMScheduler(...).alphas_cumprod`.

    `beta_start` / `beta_end` default to the schedule's usual range (BETA_RANGES).
    """
    if beta_schedule not in BETA_RANGES:
        raise ValueError(f"unknown beta_schedule {beta_schedule!r}; expected one of {BETA_SCHEDULES}")
    lo, hi = BETA_RANGES[beta_schedule]
    start = lo if beta_start is None else float(beta_start)
    end = hi if beta_end is None else float(beta_end)
    return _alphas_cumprod(int(num_train_timesteps), beta_schedule, start, end)


def timesteps(t: torch.Tensor | int | float, batch: int | None = None, device: torch.device | str | None = None,
              num_train_timesteps: int | None = None) -> torch.Tensor:
    """t as a [B] long tensor on `device` (default: t's own, or the CPU).

    Float timesteps are rounded; a single timestep is broadcast to `batch`; with
    `num_train_timesteps` the result is clamped to [0, T − 1].
    """
    t = torch.as_tensor(t, device=device)
    t = (t.round() if t.is_floating_point() else t).long().reshape(-1)
    if num_train_timesteps is not None:
        t = t.clamp(0, num_train_timesteps - 1)
    if batch is not None and t.numel() == 1 and batch != 1:
        t = t.expand(batch)
    return t


def alphas_sigmas(alphas_cumprod: torch.Tensor, t: torch.Tensor | int,
                  ndim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(α_t, σ_t) = (√ᾱ_t, √(1−ᾱ_t)), each [B, 1, …, 1] with `ndim` dims, on t's device.

    Computed in alphas_cumprod's precision, at least float32 (pass a float64 ᾱ for float64);
    cast to the data's dtype at use.
    """
    device = t.device if isinstance(t, torch.Tensor) else alphas_cumprod.device
    dtype = torch.promote_types(alphas_cumprod.dtype, torch.float32)
    abar = alphas_cumprod.to(device=device, dtype=dtype)[timesteps(t, device=device)]  # [B]
    shape = (-1,) + (1,) * (ndim - 1)
    return abar.sqrt().reshape(shape), (1.0 - abar).sqrt().reshape(shape)


def add_noise(z: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int,
              alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = α_t z + σ_t ε, in z's dtype (a single t is used for the whole batch)."""
    a, s = alphas_sigmas(alphas_cumprod, timesteps(t, z.shape[0], z.device), z.ndim)
    return a.to(z.dtype) * z + s.to(z.dtype) * eps.to(z.dtype)


def frame_noise(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None,
                shared: float = 0.0) -> torch.Tensor:
    """ε ~ N(0, I) per element, on the CPU. For clips [B, F, ...] with `shared` = ρ > 0 the frames of a clip
    share a part of their noise: ε_f = √ρ·ε_clip + √(1 − ρ)·ε'_f (PYoCo's "mixed" noise), so every frame
    is still N(0, I) and two frames correlate by ρ. A video prior trained on such noise is given it
    wherever noise is drawn for it (training, sampling, distillation). ρ = 0 is plain `torch.randn`."""
    if not 0.0 <= shared <= 1.0:
        raise ValueError(f"the shared share of frame noise must be in [0, 1], got {shared}")
    independent = torch.randn(tuple(shape), generator=generator)
    if shared == 0.0:
        return independent
    if len(shape) < 3:
        raise ValueError(f"shared frame noise needs clips [B, F, ...]; got shape {tuple(shape)}")
    common = torch.randn((shape[0], 1, *shape[2:]), generator=generator)
    return shared ** 0.5 * common + (1.0 - shared) ** 0.5 * independent


# ----------------------------------------------------------------------------- conversions
# α, σ broadcast against the data ([B, 1, 1, 1] from `alphas_sigmas`).

def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0 = (x_t − σ ε) / α."""
    return (x_t - sigma * eps) / alpha


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ε = (x_t − α x0) / σ."""
    return (x_t - alpha * x0) / sigma


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ε = σ x_t + α v (since α² + σ² = 1)."""
    return sigma * x_t + alpha * v


def velocity(x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """v = α ε − σ x0, the v-prediction target."""
    return alpha * eps - sigma * x0


def eps_from_output(output: torch.Tensor, x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """A network's raw output (ε, v or x0 per `prediction_type`) as ε."""
    if prediction_type == "epsilon":
        return output
    if prediction_type == "v_prediction":
        return eps_from_v(x_t, output, alpha, sigma)
    if prediction_type == "sample":
        return eps_from_x0(x_t, output, alpha, sigma)
    raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def training_target(x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """What a network of `prediction_type` should output for x_t = α x0 + σ ε: ε, v or x0."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "v_prediction":
        return velocity(x0, eps, alpha, sigma)
    if prediction_type == "sample":
        return x0
    raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
