"""Dense all-pairs reference renderer for Gaussian splats: slow, simple, obviously correct.

Every pixel meets every Gaussian in front of the camera (no tiles, no screen boxes, no culling by
radius), sorted by depth once per image, and composited with the same rules as the tile
rasterizer (and gsplat):

    alpha = min(0.999, o · exp(−power)), set to 0 when below 1/255
    T     = cumulative product of (1 − alpha) along depth
    w     = alpha · T_before, kept while T_after > 1e-4

It shares only the projection with the tile path (checked against gsplat on its own). Memory is
O(B · H · W · N); use it for tests and benchmarks on small scenes.
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera
from dreamer.render.splat.composite import ALPHA_THRESHOLD, MAX_ALPHA, MIN_TRANSMITTANCE
from dreamer.render.splat.projection import EPS2D, camera_to_opencv, project_gaussians
from dreamer.render.splat.raster import SplatRender


def rasterize_dense(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                    opacities: torch.Tensor, colors: torch.Tensor, camera: Camera,
                    background: torch.Tensor | None = None, eps2d: float = EPS2D,
                    near: float = 0.01, far: float = 1e10) -> SplatRender:
    """Same arguments and outputs as `rasterize_gaussians` (info holds means2d and depths)."""
    B, N, W, H = len(camera), means.shape[0], camera.width, camera.height
    viewmats, Ks = camera_to_opencv(camera)
    proj = project_gaussians(means, quats, scales, viewmats.to(means.dtype), Ks.to(means.dtype), W, H,
                             eps2d=eps2d, near=near, far=far)
    colors = colors.expand(B, N, colors.shape[-1]) if colors.dim() == 2 else colors
    ys, xs = torch.meshgrid(torch.arange(H, dtype=means.dtype), torch.arange(W, dtype=means.dtype),
                            indexing="ij")
    pixels = torch.stack([xs, ys], dim=-1).reshape(-1, 2) + 0.5  # [P, 2] pixel centres

    rgbs, alphas, depths = [], [], []
    for i in range(B):
        keep = proj.in_depth_range[i].nonzero()[:, 0]
        keep = keep[torch.argsort(proj.depths[i, keep])]  # [K] front to back
        d = pixels[:, None, :] - proj.means2d[i, keep][None]  # [P, K, 2]
        a, b, c = proj.conics[i, keep].unbind(-1)  # [K]
        power = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]  # [P, K]
        # (The clamp only avoids exp()'s slow denormal path: o · e^-30 is far under 1/255.)
        alpha = (opacities[keep] * torch.exp(-power.clamp_max(30.0))).clamp_max(MAX_ALPHA)
        alpha = torch.where((power >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
        t_after = torch.cumprod(1.0 - alpha, dim=-1)  # [P, K]
        t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], dim=-1)
        w = torch.where(t_after > MIN_TRANSMITTANCE, alpha * t_before, torch.zeros_like(alpha))
        acc = w.sum(-1, keepdim=True)  # [P, 1]
        rgb = w @ colors[i, keep]  # [P, D]
        if background is not None:
            rgb = rgb + (1.0 - acc) * background.reshape(-1, colors.shape[-1])[min(i, len(background) - 1)]
        rgbs.append(rgb.reshape(H, W, -1))
        alphas.append(acc.reshape(H, W, 1))
        depths.append(((w @ proj.depths[i, keep][:, None]) / acc.clamp_min(1e-10)).reshape(H, W, 1))
    info = {"means2d": proj.means2d, "depths": proj.depths, "width": W, "height": H}
    return SplatRender(torch.stack(rgbs), torch.stack(alphas), torch.stack(depths), info)
