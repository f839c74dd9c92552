"""DDIM sampling from a tiny prior with classifier-free guidance, and image grids.

`sample_views` runs diffusers' DDIMScheduler ("trailing" spacing so the first step starts from pure
noise at t = T − 1, x̂0 clipped to [−1, 1] as usual in pixel space) on the prior's ε̂. η = 0 is
deterministic DDIM; η = 1 adds DDPM's fresh noise at every step, which corrects errors the small
model makes along the way (its samples are then markedly more often the right shape and colour,
bench/prior_accuracy.py), so η = 1 is the default;
guidance is ε̂ = ε̂_u + s (ε̂_c − ε̂_u) from one batched call on [cond; uncond], both with the
view's camera. The scale s may follow the noise level (SamplerConfig.guidance_at): a stronger
scale on the high-noise half of the trajectory, where the object's shape is decided, keeps the
mild one on the low-noise half, where a strong scale over-saturates the colours (red drawn pink);
it is off by default, its gain being within the noise of bench/prior_accuracy.py (docs/tiny-prior.md).
All noise comes from a generator seeded with `seed`: same seed, same images. A video prior trained on
noise its frames share (`frame_noise_share`) gets the step noise drawn the same way.

A multi-view prior (`views_per_sample` V > 1) samples its views jointly, V at a time: N cameras
(N a multiple of V) are grouped into the sets {i, i + N/V, i + 2N/V, …}, so a turntable of N views
is sampled as N/V sets of evenly spaced views, as the prior was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors.base import Prior
from dreamer.priors.schedule import frame_noise


def ddim_scheduler(prior: Prior, steps: int):
    """A DDIMScheduler matching the prior's schedule, set to `steps` steps (ε-prediction: the Prior contract)."""
    from diffusers import DDIMScheduler

    s = prior.schedule
    scheduler = DDIMScheduler(num_train_timesteps=s.num_train_timesteps, beta_start=s.beta_start, beta_end=s.beta_end,
                              beta_schedule=s.beta_schedule, prediction_type="epsilon", clip_sample=True,
                              set_alpha_to_one=False, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    return scheduler


@dataclass(frozen=True)
class SamplerConfig:
    """How `dreamer prior sample` (and bench/prior_accuracy.py) draws from the prior."""

    steps: int = 50  # DDIM steps
    guidance: float = 2.0  # CFG scale (below `high_noise_from` when `high_noise_guidance` is set)
    high_noise_guidance: float | None = None  # CFG scale at timesteps >= `high_noise_from`; None = `guidance`
    high_noise_from: int = 500  # first timestep (of the prior's 1000) counted as high noise
    eta: float = 1.0  # DDIM η: 0 deterministic, 1 fresh noise every step like DDPM

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UserError(f"sampler steps must be positive, got {self.steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise UserError(f"sampler eta must lie in [0, 1], got {self.eta}")

    def guidance_at(self, timestep: int) -> float:
        """The CFG scale at `timestep`."""
        if self.high_noise_guidance is not None and timestep >= self.high_noise_from:
            return self.high_noise_guidance
        return self.guidance


@torch.no_grad()
def sample_views(prior: Prior, prompt: str, cameras: Camera, sampler: SamplerConfig = SamplerConfig(),
                 seed: int = 0, negative_prompt: str = "") -> torch.Tensor:
    """[N, 3, S, S] images in [0, 1], one per camera, for `prompt`."""
    return sample_images(prior, [prompt] * len(cameras), cameras, sampler, seed, negative_prompt)


@torch.no_grad()
def sample_images(prior: Prior, prompts: list[str], cameras: Camera, sampler: SamplerConfig = SamplerConfig(),
                  seed: int = 0, negative_prompt: str = "") -> torch.Tensor:
    """[N, 3, S, S] images in [0, 1]: image i shows prompts[i] from camera i (one batched DDIM run)."""
    n = len(cameras)
    if len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} cameras")
    order = view_set_order(n, prior.views_per_sample)
    if order is None:
        return _sample_in_order(prior, prompts, cameras, sampler, seed, negative_prompt)
    # sample set by set, then put the images back in the cameras' order
    images = _sample_in_order(prior, [prompts[i] for i in order], cameras[order], sampler, seed, negative_prompt)
    return images[torch.argsort(order)]


def _sample_in_order(prior: Prior, prompts: list[str], cameras: Camera, sampler: SamplerConfig, seed: int,
                     negative_prompt: str) -> torch.Tensor:
    n, size = len(cameras), prior.image_size
    encoded = {p: prior.encode_prompt(p, negative_prompt) for p in dict.fromkeys(prompts)}
    cond = torch.cat([encoded[p].conditional(None, 1) for p in prompts])  # [N, L, D]
    uncond = torch.cat([encoded[p].unconditional(1) for p in prompts])
    text = torch.cat([cond, uncond.to(cond.dtype)])  # [2N, L, D]
    cams2 = Camera(cameras.c2w.repeat(2, 1, 1), cameras.fovy.repeat(2), cameras.width, cameras.height)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, 3, size, size, generator=gen).to(prior.alphas_cumprod.device)  # [N, 3, S, S]
    return prior.decode(denoise_with_cfg(prior, x, text, cams2, sampler, gen)).cpu()


def denoise_with_cfg(prior: Prior, x: torch.Tensor, text: torch.Tensor, cameras, sampler: SamplerConfig,
                     gen: torch.Generator) -> torch.Tensor:
    """DDIM from pure noise x [N, ...] to x0 with CFG: `text` [2N, ...] is [cond; uncond] and `cameras` the
    cameras of that doubled batch (images: 2N; clips: 2N·F). One batched prior call per step."""
    scheduler = ddim_scheduler(prior, sampler.steps)
    n = x.shape[0]
    for t in scheduler.timesteps:
        t_in = torch.full((2 * n,), int(t), dtype=torch.long, device=x.device)
        eps_c, eps_u = prior.predict_noise(torch.cat([x, x]), t_in, text, cameras).float().chunk(2)
        eps = eps_u + sampler.guidance_at(int(t)) * (eps_c - eps_u)
        # the step's fresh noise (η > 0), drawn as the prior was trained (plain randn for independent frames)
        noise = frame_noise(x.shape, gen, prior.frame_noise_share).to(x.device) if sampler.eta > 0 else None
        x = scheduler.step(eps, t, x, eta=sampler.eta, variance_noise=noise).prev_sample
    return x


def view_set_order(n: int, views: int) -> torch.Tensor | None:
    """The order that groups n cameras into sets {i, i + n/V, …} (None when V = 1); UserError unless V divides n."""
    if views == 1:
        return None
    if n % views:
        raise UserError(f"the multi-view prior samples whole sets of {views} views: ask for a multiple of {views} views")
    per_set = n // views
    return torch.arange(n).reshape(views, per_set).T.reshape(-1)


def save_grid(images: torch.Tensor, path: Path | str, columns: int | None = None, scale: int = 4) -> Path:
    """Write [N, 3, S, S] images in [0, 1] as one PNG grid (nearest-neighbour upscaled `scale`×)."""
    from PIL import Image

    from dreamer.io import atomic_save

    n, _, h, w = images.shape
    columns = columns or n
    rows = (n + columns - 1) // columns
    pad = 2
    grid = torch.ones(3, rows * (h * scale + pad) + pad, columns * (w * scale + pad) + pad)
    big = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = pad + r * (h * scale + pad), pad + c * (w * scale + pad)
        grid[:, y:y + h * scale, x:x + w * scale] = big[i]
    array = (grid.clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy()
    path = Path(path)
    atomic_save(path, lambda tmp: Image.fromarray(array).save(tmp))
    return path


def ground_truth_views(prompt: str, cameras: Camera, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """[N, 3, S, S] shape-library renders of `prompt` (UserError when it names no library object)."""
    from dreamer.shapes import parse_prompt, render_spec

    out = render_spec(parse_prompt(prompt), cameras, background=background, supersample=2)
    return out.rgb.permute(0, 3, 1, 2).contiguous()
