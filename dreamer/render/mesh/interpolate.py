"""Per-pixel interpolation of vertex attributes with the fragments' barycentrics."""

from __future__ import annotations

import torch

from dreamer.render.mesh.raster import Fragments


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Σ_k bary_k · attr[face[triangle_id, k]] per pixel: [B, H, W, C], 0 where empty.

    attributes: [V, C] shared by all cameras, or [B, V, C] per camera. Differentiable w.r.t. the
    attributes and (through `fragments.bary`) the vertex positions.
    """
    B, H, W = fragments.triangle_id.shape
    flat = fragments.triangle_id.reshape(-1)
    pix = (flat >= 0).nonzero().squeeze(1)  # [N] covered pixels; empty ones are never gathered
    corners = faces.long()[flat[pix]]  # [N, 3] vertex ids
    if attributes.ndim == 2:
        values = attributes[corners]  # [N, 3, C]
    else:
        assert attributes.ndim == 3 and attributes.shape[0] == B, (attributes.shape, B)
        values = attributes[(pix // (H * W))[:, None], corners]
    bary = fragments.bary.reshape(-1, 3)[pix].to(values.dtype)  # [N, 3]
    out = (bary[..., None] * values).sum(-2)  # [N, C]
    return values.new_zeros(B * H * W, values.shape[-1]).index_copy(0, pix, out).view(B, H, W, -1)
