"""Tile rasterizer for 3D Gaussian splats in pure PyTorch (the CPU path).

    project (projection.py) → bin into tiles (binning.py) → evaluate alphas → composite (composite.py)

Every (tile, Gaussian) intersection is evaluated at every pixel of its tile in one batch: the
exponent log(o) − power at pixel offset o from the tile centre is a quadratic in o, so all slots
and pixels come out of one matrix product [slots, 6] @ [6, tile pixels] (and so do its
gradients), rather than from broadcasting over tiny tile dimensions, which is slow on CPU.
Compositing (a segmented transmittance scan with a hand-written backward) and gsplat's rules are
described in composite.py. Gradients reach means, quats, scales, opacities and colours through
autograd; `info["means2d"]` keeps its gradient for densification.

Small tiles suit the CPU: a 4×4 tile wastes far fewer pixel evaluations on pixels outside a
Gaussian's footprint than gsplat's 16×16 CUDA tiles, and the result does not depend on the tile
size (pixels outside a Gaussian's box have alpha under the 1/255 threshold anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dreamer.cameras import Camera
from dreamer.render.splat.binning import TileBins, bin_gaussians
from dreamer.render.splat.composite import MAX_ALPHA, composite_chunks
from dreamer.render.splat.projection import EPS2D, camera_to_opencv, project_gaussians

DEFAULT_TILE_SIZE = 4  # measured fastest on CPU (see docs/benchmarks.md, "splat-raster")


@dataclass
class SplatRender:
    """A Gaussian-splat render of B cameras."""

    rgb: torch.Tensor  # [B, H, W, D] composited over the background (D = 3 for colours)
    alpha: torch.Tensor  # [B, H, W, 1] accumulated opacity Σ w
    depth: torch.Tensor  # [B, H, W, 1] expected camera z given a hit, Σ w z / Σ w; 0 where empty
    info: dict[str, Any] = field(default_factory=dict)  # means2d, radii, depths, n_isect, ...


def rasterize_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                        opacities: torch.Tensor, colors: torch.Tensor, camera: Camera,
                        background: torch.Tensor | None = None,
                        tile_size: int = DEFAULT_TILE_SIZE, eps2d: float = EPS2D, near: float = 0.01,
                        far: float = 1e10, chunk: int | None = None) -> SplatRender:
    """Render N Gaussians into the B views of `camera`.

    means [N, 3], quats [N, 4] (wxyz, need not be unit), scales [N, 3] (> 0, already activated),
    opacities [N] in [0, 1], colors [N, D] or per view [B, N, D], background [B or 1, D] or None
    (black). `chunk`: slots per chunk of a tile's intersection list (default: from the load).

    info: "means2d" [B, N, 2] (retains its gradient), "radii" [B, N] int (larger half-size of the
    screen box in pixels, 0 = culled), "radii_xy" [B, N, 2] (per axis, as gsplat ≥ 1.5 returns),
    "depths" [B, N] camera z, "conics" [B, N, 3], "n_isect", "chunks" (evaluated, all chunks of
    the intersection lists), "tile_size", "width", "height".
    """
    B, N, D = len(camera), means.shape[0], colors.shape[-1]
    W, H = camera.width, camera.height
    viewmats, Ks = camera_to_opencv(camera)
    proj = project_gaussians(means, quats, scales, viewmats.to(means.dtype), Ks.to(means.dtype), W, H,
                             opacities=opacities, eps2d=eps2d, near=near, far=far)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    bins = bin_gaussians(means2d.detach(), proj.radii, proj.depths.detach(), W, H, tile_size, chunk)

    colors = colors.expand(B, N, D) if colors.dim() == 2 else colors
    ones = torch.ones_like(proj.depths)
    a, b, c = proj.conics.unbind(-1)  # [B, N]
    log_o = torch.log(opacities.clamp_min(1e-30)).expand(B, N)
    # Per-Gaussian rows for the compositor: x, y, the exponent's quadratic form, log opacity, then
    # the features it sums: colour, z (for depth) and 1 (for alpha).
    table = torch.cat([means2d, torch.stack([-0.5 * a, -b, -0.5 * c, log_o], dim=-1), colors,
                       proj.depths[..., None], ones[..., None]], dim=-1).reshape(B * N, 6 + D + 2)
    dummy = torch.zeros_like(table[:1])
    dummy[:, 5] = -1e4  # the padding slot's log-opacity: alpha = 0 everywhere
    table = torch.cat([table, dummy])  # [B·N + 1, 6 + D + 2]

    clamp = bool((opacities > MAX_ALPHA).any())
    feats, evaluated = composite_tiles(table, bins, clamp_alpha=clamp)
    feats = feats[:, :H, :W]  # [B, H, W, D + 2]
    rgb, depth_sum, alpha = feats[..., :D], feats[..., D:D + 1], feats[..., D + 1:]
    if background is not None:
        rgb = rgb + (1.0 - alpha) * background.to(rgb.dtype).reshape(-1, 1, 1, D)
    depth = depth_sum / alpha.clamp_min(1e-10)  # Σ w z ≤ alpha · z_max: empty pixels stay 0
    info = {"means2d": means2d, "radii": proj.radii.amax(dim=-1), "radii_xy": proj.radii,
            "depths": proj.depths, "conics": proj.conics, "n_isect": bins.n_isect,
            "chunks": (int(evaluated.sum()), len(evaluated)),  # (evaluated, all): the early stop
            "tile_size": tile_size, "width": W, "height": H, "n_cameras": B}
    return SplatRender(rgb, alpha, depth, info)


def composite_tiles(table: torch.Tensor, bins: TileBins, clamp_alpha: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_i w_i · features_i for every pixel [B, tiles_y·ts, tiles_x·ts, F], and which chunks
    were evaluated [C] (the others were hidden behind saturated pixels).

    table [B·N + 1, 6 + F]: per Gaussian (x, y, −a/2, −b, −c/2, log o, features...) with a
    transparent last row that fills the padding slots.
    """
    ts, (C, L) = bins.tile_size, bins.gaussians.shape
    F = table.shape[1] - 6
    rows = table[bins.gaussians.reshape(-1)]  # [C·L, 6 + F]
    x, y, qa, qb, qc, log_o = rows[:, :6].unbind(-1)  # each [C·L]

    # d = o + e: o the pixel's offset from its tile's centre, e the centre's offset from the mean.
    # qa dx² + qb dx dy + qc dy² + log o = Σ_k coef_k · basis_k(o), basis (ox², ox oy, oy², ox, oy, 1).
    tile = (bins.chunk_tile % bins.n_tiles).repeat_interleave(L)  # [C·L] tile within its image
    ex = (tile % bins.tiles_x * ts + 0.5 * ts).to(table.dtype) - x
    ey = (tile // bins.tiles_x * ts + 0.5 * ts).to(table.dtype) - y
    coefs = torch.stack([qa, qb, qc, 2 * qa * ex + qb * ey, qb * ex + 2 * qc * ey,
                         (qa * ex + qb * ey) * ex + qc * ey * ey + log_o], dim=-1)  # [C·L, 6]
    per_chunk, evaluated = composite_chunks(coefs.view(C, L, 6), _basis(ts, table.dtype, table.device),
                                            rows[:, 6:].reshape(C, L, F), bins.tile_first,
                                            bins.tile_chunks, clamp_alpha)  # [C, F, P], [C]
    n_images = bins.n_images
    tiles = per_chunk.new_zeros(n_images * bins.n_tiles, F, ts * ts).index_add(0, bins.chunk_tile, per_chunk)
    image = tiles.view(n_images, bins.tiles_y, bins.tiles_x, F, ts, ts).permute(0, 1, 4, 2, 5, 3)
    return image.reshape(n_images, bins.tiles_y * ts, bins.tiles_x * ts, F), evaluated


def _basis(ts: int, dtype: torch.dtype, device) -> torch.Tensor:
    """[6, ts²] monomials (ox², ox oy, oy², ox, oy, 1) of the pixel offsets from the tile centre."""
    o = torch.arange(ts, dtype=dtype, device=device) - (ts - 1) / 2
    oy, ox = torch.meshgrid(o, o, indexing="ij")  # row-major pixels: y, then x
    ox, oy = ox.reshape(-1), oy.reshape(-1)
    return torch.stack([ox * ox, ox * oy, oy * oy, ox, oy, torch.ones_like(ox)])
