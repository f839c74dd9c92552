"""Analytic silhouette antialiasing, which also gives vertex positions gradients at silhouettes.

After Laine et al., "Modular Primitives for High-Performance Differentiable Rendering" (2020,
nvdiffrast's `antialias`), restricted to the object's outline: only neighbouring pixel pairs where
one pixel is covered and the other is empty are treated (not silhouettes of the mesh over itself).

For such a pair, walk from the covered pixel's centre towards the empty one's; the walk leaves
the covered pixel's triangle where its first edge function e_k (raster.py: affine in the pixel
coordinates, zero on the projected edge) changes sign, at t = e_k(in) / (e_k(in) − e_k(out)) ∈
[0, 1). Seen across that edge, the box filter covers the far pixel by t − ½ when t > ½ and uncovers
the near one by ½ − t when t < ½, so one of the two colours moves towards the other by that
much. t depends on the vertex positions, so the blend gives them a gradient. A pair is used only
in the direction more perpendicular to the edge (horizontal pairs for steep edges), so an edge is
counted once.
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera
from dreamer.render.mesh.project import pixel_directions, world_to_camera
from dreamer.render.mesh.raster import Fragments, edge_functions


def antialias(colour: torch.Tensor, fragments: Fragments, vertices: torch.Tensor, faces: torch.Tensor,
              camera: Camera) -> torch.Tensor:
    """colour [B, H, W, C] (a render of `fragments`, background in the empty pixels) →
    antialiased colour [B, H, W, C], differentiable w.r.t. colour and vertices [V, 3]."""
    B, H, W = fragments.triangle_id.shape
    verts_cam = world_to_camera(vertices, camera).to(colour.dtype)  # [B, V, 3]
    tri_ids = fragments.triangle_id.reshape(-1)
    flat_colour = colour.reshape(B * H * W, -1)
    rows, cols = torch.meshgrid(torch.arange(H, device=colour.device), torch.arange(W, device=colour.device),
                                indexing="ij")
    pixel = (torch.arange(B, device=colour.device)[:, None, None] * (H * W) + rows * W + cols)  # [B, H, W]
    delta = torch.zeros_like(flat_colour)
    for horizontal in (True, False):
        a = pixel[:, :, :-1] if horizontal else pixel[:, :-1, :]
        b = pixel[:, :, 1:] if horizontal else pixel[:, 1:, :]
        a, b = a.reshape(-1), b.reshape(-1)
        a_covered = tri_ids[a] >= 0
        pair = a_covered != (tri_ids[b] >= 0)
        inner = torch.where(a_covered, a, b)[pair]  # [N] the covered pixel of each outline pair
        outer = torch.where(a_covered, b, a)[pair]
        batch = inner // (H * W)
        n_verts = verts_cam.shape[1]
        tri = verts_cam.reshape(-1, 3)[batch[:, None] * n_verts + faces[tri_ids[inner]]]  # [N, 3, 3]
        e_in, e_out = (edge_functions(tri, pixel_directions(camera, batch, (p % (H * W)) % W,
                                                             (p % (H * W)) // W, tri.dtype))
                       for p in (inner, outer))  # [N, 3] each
        sign = torch.where(e_in.sum(-1, keepdim=True) < 0, -1.0, 1.0).to(tri.dtype)
        e_in, e_out = e_in * sign, e_out * sign  # now e_in ≥ 0: inside means all three ≥ 0
        exits = e_out < 0
        t = torch.where(exits, e_in / torch.where(exits, e_in - e_out, torch.ones_like(e_in)),
                        torch.full_like(e_in, 2.0))
        t, edge = t.min(-1)  # [N] the first edge the walk crosses
        # The edge's screen-space normal is the gradient of e_k in (x, y): (c_k.x, c_k.y).
        normal = torch.cross(tri.roll(-1, dims=-2), tri.roll(-2, dims=-2), dim=-1)
        normal = normal.gather(1, edge[:, None, None].expand(-1, 1, 3))[:, 0].detach()
        steep = normal[:, 0].abs() >= normal[:, 1].abs()
        keep = (steep if horizontal else ~steep) & (t <= 1)
        t, inner, outer = t[keep], inner[keep], outer[keep]
        towards = flat_colour[inner] - flat_colour[outer]  # [M, C] inner minus outer colour
        grow = (t > 0.5)[:, None]  # the edge lies past the midpoint: the outer pixel is part-covered
        weight = (t - 0.5).abs()[:, None]
        delta = delta.index_add(0, torch.where(grow[:, 0], outer, inner),
                                torch.where(grow, weight * towards, -weight * towards))
    return (flat_colour + delta).view_as(colour)
