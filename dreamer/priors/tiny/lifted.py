"""The `tiny-3d` network: a view-set denoiser whose estimate is a rendered 3D volume.

`tiny` and `tiny-mv` predict each view's x̂0 in 2D; a small 2D network then has to learn from data
how an object looks from every camera, and on 2 CPU cores neither learnt it (issue 27: SDS through
them distils the azimuth average). This network is camera-true by construction instead, as in
Viewset Diffusion (Szymanowicz et al. 2023), RenderDiffusion and DMV3D: it predicts one voxel
volume per view set and *renders* it at the set's cameras, so its x̂0 of a 45°-turned camera is the
same object seen 45° turned.

Per set of V views (x_t [V, 3, S, S], their cameras, t, the prompt's tokens):

1. **Lift.** A two-layer 2D CNN gives per-pixel features of each noisy view; every voxel centre of a
   G³ grid over the box [−h, h]³ is projected into every view and reads the features there (bilinear);
   the mean and variance over the views that see it, and the share that do, are the lifted features.
2. **Text volume.** An attention-pooled prompt code is decoded to a coarse volume (G/4 → G) — what the
   prompt looks like in 3D when x_t shows nothing (high t).
3. **3D UNet** (two levels, FiLM on the t embedding and the prompt code) maps both to density and colour
   per voxel. Colour is view-independent: the shape library lights objects from a light fixed in the
   world, so a surface point looks the same from every camera.
4. **Render** (emission–absorption, `samples_per_ray` points per pixel ray through the box) over a
   background per set: a vertical two-colour ramp read from the noisy views' left and right edges
   (the training backgrounds are solid colours or vertical gradients, one per set).

The output is v̂ = (α_t x_t − x̂0) / σ_t, so the network drops in wherever a tiny UNet's v̂ goes; it is
trained on x̂0 directly (`dreamer.priors.tiny.train`). It needs cameras: there is no camera-free branch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dreamer.cameras import Camera, camera_rays
from dreamer.errors import UserError
from dreamer.priors.tiny.text import TEXT_DIM


@dataclass
class LiftedConfig:
    """Architecture of the `tiny-3d` network (stored in the weights folder's config.json)."""

    # voxels per side of the volume (a multiple of 4): 24 keeps a chair's legs (silhouette IoU of the true
    # chair's SDF sampled at the voxel centres and rendered: 0.37–0.59 at 16, 0.85–0.92 at 32)
    grid: int = 24
    half_extent: float = 0.6  # the volume spans [−h, h]³ in world units (the shape library's objects fit in ±0.55)
    feature_channels: int = 16  # per-pixel features of each noisy view that the voxels read
    channels: tuple[int, int] = (16, 32)  # 3D UNet widths at G³ and (G/2)³ (1.4 training steps/s on 2 cores)
    code_dim: int = 256  # width of the prompt code and of the t embedding's share of the FiLM input
    samples_per_ray: int = 40  # render: points per pixel ray through the box
    density_scale: float = 30.0  # render: density = density_scale · softplus(raw), per world unit
    text_dim: int = TEXT_DIM  # width of the token embeddings (MiniLM: 384)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.grid < 8 or self.grid % 4:
            raise UserError(f"tiny-3d: grid must be a multiple of 4 and at least 8, got {self.grid}")
        if len(self.channels) != 2 or any(c % 8 for c in self.channels):
            raise UserError(f"tiny-3d: channels must be two widths divisible by 8, got {list(self.channels)}")
        if self.half_extent <= 0 or self.samples_per_ray < 2:
            raise UserError("tiny-3d: half_extent must be positive and samples_per_ray at least 2")

    @property
    def voxel_spacing(self) -> float:
        """World units between neighbouring voxel centres."""
        return 2 * self.half_extent / (self.grid - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "LiftedConfig":
        return cls(**d)


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[B, dim] sinusoidal features of t [B] (DDPM's)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class _FiLMBlock(nn.Module):
    """Residual 3D conv block; the conditioning vector scales and shifts its middle activations."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


class LiftedDenoiser(nn.Module):
    """x_t of view sets + cameras + t + prompt tokens -> v̂, through one rendered volume per set."""

    def __init__(self, config: LiftedConfig, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.config = c = config
        c0, c1 = c.channels
        fc = c.feature_channels
        self.register_buffer("alphas_cumprod", alphas_cumprod.float().clone(), persistent=False)  # [T]
        self.features = nn.Sequential(nn.Conv2d(3, fc, 3, padding=1), nn.SiLU(), nn.Conv2d(fc, fc, 3, padding=1))
        self.text_query = nn.Parameter(torch.randn(1, 1, c.text_dim) * 0.02)
        self.text_pool = nn.MultiheadAttention(c.text_dim, num_heads=4, batch_first=True)
        self.text_code = nn.Sequential(nn.Linear(c.text_dim, c.code_dim), nn.SiLU(), nn.Linear(c.code_dim, c.code_dim))
        self.time_code = nn.Sequential(nn.Linear(64, c.code_dim), nn.SiLU(), nn.Linear(c.code_dim, c.code_dim))
        cond = 2 * c.code_dim
        coarse = c.grid // 4
        self.text_volume = nn.Linear(cond, c1 * coarse ** 3)
        self.text_up1 = nn.Conv3d(c1, c1, 3, padding=1)
        self.text_up2 = nn.Conv3d(c1, c0, 3, padding=1)
        lifted = 2 * (fc + 3) + 1
        self.conv_in = nn.Conv3d(c0 + lifted, c0, 3, padding=1)
        self.down_block = _FiLMBlock(c0, cond)
        self.down = nn.Conv3d(c0, c1, 3, stride=2, padding=1)
        self.mid_blocks = nn.ModuleList([_FiLMBlock(c1, cond), _FiLMBlock(c1, cond)])
        self.up = nn.Conv3d(c1, c0, 3, padding=1)
        self.up_block = _FiLMBlock(c0, cond)
        self.head = nn.Conv3d(c0, 4, 1)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([-5.0, 0.0, 0.0, 0.0]))  # starts as a faint haze (density ≈ 0.2 per unit)
        self.background = nn.Sequential(nn.Linear(6 * 8 + 64, 128), nn.SiLU(), nn.Linear(128, 6))

    # -- parts

    def _prompt_code(self, text: torch.Tensor) -> torch.Tensor:  # [N, L, D] -> [N, code]
        query = self.text_query.expand(text.shape[0], -1, -1).to(text.dtype)
        pooled, _ = self.text_pool(query, text, text, need_weights=False)
        return self.text_code(pooled[:, 0])

    def voxel_centres(self, device, dtype) -> torch.Tensor:
        """[G, G, G, 3] world (x, y, z) of the voxel centres, indexed [z, y, x] (grid_sample's D, H, W)."""
        h, g = self.config.half_extent, self.config.grid
        axis = torch.linspace(-h, h, g, device=device, dtype=dtype)
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        return torch.stack([x, y, z], dim=-1)

    def _lift(self, feats: torch.Tensor, camera: Camera, sets: int, views: int) -> torch.Tensor:
        """Per-voxel mean, variance and coverage of the views' features: [N, 2C + 1, G, G, G]."""
        g = self.config.grid
        points = self.voxel_centres(feats.device, feats.dtype).reshape(-1, 3)  # [P, 3]
        w2c = camera.w2c.to(feats.device, feats.dtype)  # [B, 4, 4]
        cam = points @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]  # [B, P, 3]; the camera looks down −z
        depth = (-cam[..., 2]).clamp_min(1e-4)
        focal = camera.focal.to(feats.device, feats.dtype)[:, None]  # pixels at the camera's own resolution
        u = 2 * focal * cam[..., 0] / depth / camera.width
        v = -2 * focal * cam[..., 1] / depth / camera.height
        uv = torch.stack([u, v], dim=-1)[:, :, None]  # [B, P, 1, 2] in grid_sample's [−1, 1]
        sampled = F.grid_sample(feats, uv, mode="bilinear", padding_mode="zeros", align_corners=False)[..., 0]
        seen = ((u.abs() <= 1) & (v.abs() <= 1) & (cam[..., 2] < 0)).to(feats.dtype)[:, None]  # [B, 1, P]
        sampled = sampled.reshape(sets, views, -1, g ** 3)
        seen = seen.reshape(sets, views, 1, g ** 3)
        count = seen.sum(1)
        mean = (sampled * seen).sum(1) / count.clamp_min(1)
        var = ((sampled - mean[:, None]) ** 2 * seen).sum(1) / count.clamp_min(1)
        return torch.cat([mean, var, count / views], dim=1).reshape(sets, -1, g, g, g)

    def _volume(self, lifted: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """[N, 4, G, G, G] raw density and colour logits."""
        c0, c1 = self.config.channels
        coarse = self.config.grid // 4
        text = self.text_volume(cond).reshape(-1, c1, coarse, coarse, coarse)
        text = F.silu(self.text_up1(F.interpolate(text, scale_factor=2, mode="trilinear", align_corners=False)))
        text = self.text_up2(F.interpolate(text, scale_factor=2, mode="trilinear", align_corners=False))
        h = self.conv_in(torch.cat([text, lifted], dim=1))
        skip = self.down_block(h, cond)
        h = self.down(skip)
        for block in self.mid_blocks:
            h = block(h, cond)
        h = self.up(F.interpolate(h, scale_factor=2, mode="trilinear", align_corners=False)) + skip
        return self.head(F.silu(self.up_block(h, cond)))

    def render(self, volume: torch.Tensor, camera: Camera, views: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(premultiplied colour [B, 3, S, S] in [0, 1], coverage [B, 1, S, S]) of each set's volume."""
        c = self.config
        sets = volume.shape[0]
        origins, dirs = camera_rays(camera.with_resolution(size))  # [B, S, S, 3]
        origins, dirs = origins.to(volume.dtype), dirs.to(volume.dtype)
        distance = origins[:, :1, :1].norm(dim=-1, keepdim=True)  # [B, 1, 1, 1]
        reach = c.half_extent * math.sqrt(3.0)
        steps = (torch.arange(c.samples_per_ray, device=volume.device, dtype=volume.dtype) + 0.5) / c.samples_per_ray
        depths = distance - reach + 2 * reach * steps  # [B, 1, 1, N]
        points = origins[..., None, :] + dirs[..., None, :] * depths[..., None]  # [B, S, S, N, 3]
        grid = (points / c.half_extent).reshape(sets, views * size * size, c.samples_per_ray, 1, 3)
        raw = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
        raw = raw[..., 0].reshape(sets, 4, views, size, size, c.samples_per_ray).transpose(1, 2)
        raw = raw.reshape(sets * views, 4, size, size, c.samples_per_ray)  # [B, 4, S, S, N]
        inside = (points.abs() <= c.half_extent).all(-1).to(volume.dtype)[:, None]  # [B, 1, S, S, N]: empty outside the box
        delta = 2 * reach / c.samples_per_ray
        alpha = 1 - torch.exp(-c.density_scale * F.softplus(raw[:, :1]) * inside * delta)  # [B, 1, S, S, N]
        transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1] + 1e-6], -1), -1)
        weights = alpha * transmittance
        colour = (weights * torch.sigmoid(raw[:, 1:])).sum(-1)
        return colour, weights.sum(-1)

    def _backgrounds(self, x_t: torch.Tensor, time: torch.Tensor, views: int) -> torch.Tensor:
        """[B, 3, S, 1] vertical two-colour ramps in [0, 1], one per set (a set is shown over one background,
        in training and in multi-view SDS), read from its views' left and right edges; time [N, 64]."""
        size = x_t.shape[-1]
        edges = torch.cat([x_t[..., :3], x_t[..., -3:]], dim=-1).mean(-1)  # [B, 3, S]
        bands = F.adaptive_avg_pool1d(edges, 8).flatten(1)  # [B, 24]
        bands = torch.cat([bands, bands ** 2], dim=1).reshape(-1, views, 48).mean(1)  # [N, 48]
        top, bottom = torch.sigmoid(self.background(torch.cat([bands, time], dim=1))).chunk(2, dim=1)
        ramp = torch.linspace(0.0, 1.0, size, device=x_t.device, dtype=x_t.dtype).reshape(1, 1, size, 1)
        ramps = top[:, :, None, None] * (1 - ramp) + bottom[:, :, None, None] * ramp  # [N, 3, S, 1]
        return ramps.repeat_interleave(views, dim=0)

    # -- the whole network

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera: Camera | None,
                   views: int) -> torch.Tensor:
        """x̂0 [B, 3, S, S] in [−1, 1] for B = N·V views, set-major."""
        return self.predict_x0_and_volume(x_t, t, text, camera, views)[0]

    def predict_x0_and_volume(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera: Camera | None,
                              views: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂0 [B, 3, S, S] in [−1, 1], raw volume [N, 4, G, G, G]): the estimate and the volume it renders
        (training's 3D loss reads the volume: `voxel_opacity`)."""
        if camera is None:
            raise UserError("the tiny-3d prior renders its estimate at the views' cameras: it needs a camera")
        batch = x_t.shape[0]
        if batch % views or len(camera) != batch:
            raise ValueError(f"tiny-3d: a batch of {batch} views with {len(camera)} cameras is not whole "
                             f"{views}-view sets")
        camera = camera.to(x_t.device)
        volume, time_1d = self._predict_volume(x_t, t, text, camera, views)
        colour, coverage = self.render(volume, camera, views, x_t.shape[-1])
        background = self._backgrounds(x_t, time_1d, views)
        return 2 * (colour + (1 - coverage) * background) - 1, volume

    def voxel_opacity(self, volume: torch.Tensor) -> torch.Tensor:
        """[N, G, G, G] (indexed z, y, x) opacity of each voxel across one voxel's length: 1 − exp(−σ·Δ)."""
        c = self.config
        return 1 - torch.exp(-c.density_scale * F.softplus(volume[:, 0]) * c.voxel_spacing)

    def _predict_volume(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera: Camera,
                        views: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw volume [N, 4, G, G, G], t embedding [N, 64]) of N = B / V sets."""
        batch, size = x_t.shape[0], x_t.shape[-1]
        first = torch.arange(0, batch, views, device=x_t.device)  # a set shares t and the prompt
        time_1d = _timestep_embedding(t[first], 64)
        cond = torch.cat([self._prompt_code(text[first]), self.time_code(time_1d)], dim=1)  # [N, 2·code]
        feats = torch.cat([x_t, self.features(x_t)], dim=1)
        return self._volume(self._lift(feats, camera.with_resolution(size), batch // views, views), cond), time_1d

    def predict_density(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera: Camera, views: int,
                        resolution: int = 128, bound: float = 1.0) -> torch.Tensor:
        """The density (per world unit) of each set's predicted volume, [N, R, R, R] at the cell centres of an
        R³ grid over [−bound, bound]³ indexed x, y, z (a NeRF's `density_grid` layout, so the same export
        and 3D metrics apply); zero outside the volume's box. What the prior believes the object is, in 3D."""
        volume, _ = self._predict_volume(x_t, t, text, camera.to(x_t.device), views)
        c = self.config
        axis = (torch.arange(resolution, device=x_t.device, dtype=volume.dtype) + 0.5) / resolution * 2 * bound - bound
        points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)  # [R, R, R, 3] (x, y, z)
        grid = (points / c.half_extent).expand(volume.shape[0], -1, -1, -1, -1)
        raw = F.grid_sample(volume[:, :1], grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
        inside = (points.abs() <= c.half_extent).all(-1).to(volume.dtype)
        return c.density_scale * F.softplus(raw) * inside

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera: Camera | None,
                views: int) -> torch.Tensor:
        """v̂ = (α_t x_t − x̂0) / σ_t [B, 3, S, S] (the tiny UNets' output)."""
        x0 = self.predict_x0(x_t, t, text, camera, views)
        acp = self.alphas_cumprod[t.long()].to(x_t.dtype)[:, None, None, None]
        return (acp.sqrt() * x_t - x0) / (1 - acp).sqrt()
