"""Fields of a Gaussian-splat asset for export: optical density on a grid, colour at points.

The density is chosen so that marching cubes treats splats like a NeRF: Gaussian i contributes
σ_i(x) = κ_i · exp(−½ dᵀ Σ_i⁻¹ d) with κ_i = −log(1 − o_i) / (√(2π) · s̄_i) (s̄_i the geometric
mean of its scales), so the optical depth of a ray through its centre is about −log(1 − o_i) and
its alpha about its opacity o_i, as the rasterizer draws it. `volume.density_to_mesh` then picks
the iso-level whose silhouette matches the rendered one, as it does for NeRFs.

The rasterizer also low-passes every splat on screen (gsplat's eps2d, 0.3 px², keeping its opacity),
so a splat smaller than a pixel of the training renders draws as a pixel-sized blot. A run at 64 px
learns thin parts (a chair's legs) from many such faint, tiny splats: they render solid, but their
3D density is a thin sparse dust below any iso-level that keeps the bulk's outline, and the legs
vanish from the mesh. `lowpass` (world units, the filter's std at the training renders' pixel
size, `render_lowpass`) is added to every splat's covariance before gridding, with κ_i from the
filtered scales: the density is then the one the rasterizer drew at that resolution.
"""

from __future__ import annotations

import math

import torch

from dreamer.render.splat.projection import quat_scale_to_covariance


def render_lowpass(distance: float, fovy_deg: float, resolution: int) -> float:
    """World-unit std of the rasterizer's screen-space low-pass (EPS2D px²) for renders of `resolution` px
    at `distance` with vertical field of view `fovy_deg`."""
    from dreamer.render.splat.projection import EPS2D

    pixel = 2.0 * distance * math.tan(math.radians(fovy_deg) / 2.0) / resolution
    return math.sqrt(EPS2D) * pixel


def _inverse_covariances(g, lowpass: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """means, Σ⁻¹, per-axis scales (of Σ + lowpass² I: its eigenvalues' square roots) and opacities."""
    a = g.activated()
    cov = quat_scale_to_covariance(torch.nn.functional.normalize(a["quats"], dim=-1), a["scales"]).double()  # [N, 3, 3]
    scales = a["scales"]
    if lowpass > 0:
        cov = cov + torch.eye(3, dtype=cov.dtype, device=cov.device) * lowpass ** 2
        scales = torch.linalg.eigvalsh(cov).clamp_min(0).sqrt().float()
    return a["means"], torch.linalg.inv(cov).float(), scales, a["opacities"]


def density_grid(g, resolution: int, bound: float = 1.0, chunk_cells: int = 4_000_000,
                 lowpass: float = 0.0) -> torch.Tensor:
    """σ [R, R, R] at the cell centres of [−bound, bound]³ (indexed x, y, z); `lowpass` as in the module notes."""
    means, inv_cov, scales, opac = _inverse_covariances(g, lowpass)
    device = means.device
    voxel = 2 * bound / resolution
    kappa = -torch.log1p(-opac.clamp(max=0.999)) / (math.sqrt(2 * math.pi) * scales.prod(-1).pow(1 / 3))
    # each Gaussian reaches 3σ of its largest axis, capped (a huge faint Gaussian would touch every cell)
    reach = (3 * scales.max(-1).values).clamp(max=g.config.mesh_sigma_cap)
    radius = torch.ceil(reach / voxel).long().clamp(min=1)  # [N] cells
    centre = torch.floor((means + bound) / voxel).long()  # [N, 3] cell of the mean
    grid = torch.zeros(resolution ** 3, device=device)
    for r in torch.unique(radius).tolist():  # one batch per window size
        ids = torch.nonzero(radius == r).squeeze(1)
        axis = torch.arange(-r, r + 1, device=device)
        offsets = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).view(-1, 3)  # [K, 3]
        per_chunk = max(1, chunk_cells // offsets.shape[0])
        for part in ids.split(per_chunk):
            cells = centre[part, None, :] + offsets[None]  # [M, K, 3]
            inside = ((cells >= 0) & (cells < resolution)).all(-1)  # [M, K]
            d = (cells.float() + 0.5) * voxel - bound - means[part, None, :]  # [M, K, 3]
            power = torch.einsum("mki,mij,mkj->mk", d, inv_cov[part], d)
            value = kappa[part, None] * torch.exp(-0.5 * power)  # [M, K]
            flat = (cells[..., 0] * resolution + cells[..., 1]) * resolution + cells[..., 2]
            grid.index_add_(0, flat[inside], value[inside])
    return grid.view(resolution, resolution, resolution)


def weighted_colour(g, points: torch.Tensor, neighbours: int = 16) -> torch.Tensor:
    """Colour [P, 3] at points [P, 3]: Σ w_i c_i / Σ w_i over the nearest Gaussians, w_i = o_i · falloff.

    Uses the view-independent (degree-0) colour; falls back to the nearest Gaussian's colour where
    every weight vanishes (points far from all Gaussians).
    """
    from scipy.spatial import cKDTree

    means, inv_cov, _, opac = _inverse_covariances(g)
    colours = g.colours()  # [N, 3]
    k = min(neighbours, means.shape[0])
    _, idx = cKDTree(means.cpu().numpy()).query(points.cpu().numpy(), k=k)
    idx = torch.as_tensor(idx, device=means.device).view(points.shape[0], k)  # [P, k]
    d = points[:, None, :] - means[idx]  # [P, k, 3]
    power = torch.einsum("pki,pkij,pkj->pk", d, inv_cov[idx], d)
    w = opac[idx] * torch.exp(-0.5 * power)  # [P, k]
    blended = (w[..., None] * colours[idx]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-12)
    nearest = colours[idx[:, 0]]
    return torch.where(w.sum(1, keepdim=True) > 1e-8, blended, nearest).clamp(0, 1)
