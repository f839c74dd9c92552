"""Triangle rasterization in two passes: which triangle each pixel sees, then where in it.

1. Visibility (no gradients). Triangles with a vertex at or behind the near plane are culled (no
   clipping); back faces are kept (a DMTet mesh's winding is not reliable). Each remaining
   triangle expands into (triangle, pixel) pairs over the pixel centres of its screen bounding box,
   in chunks of at most `chunk_pairs` pairs; edge functions decide coverage and a scatter-amin on
   a packed int64 key (depth bits, face index) keeps the nearest triangle of every pixel.
2. Fragments (differentiable). For each covered pixel, the barycentrics of the point where the
   pixel-centre ray meets the plane of its triangle, and that point's depth, from the
   camera-space vertices.

One formula serves both passes. With d = (x, y, 1) the camera-frame direction through a pixel
centre and v₀, v₁, v₂ the camera-frame vertices, the ray hits the triangle's plane at the point
with barycentrics
        b_k = e_k / (e₀ + e₁ + e₂),   e_k = d · (v_{k+1} × v_{k+2})
(e_k is 6 × the volume of the tetrahedron (eye, d, v_{k+1}, v_{k+2}), proportional to the area of
the sub-triangle opposite v_k at the hit point). These are the barycentrics of the 3D hit point, so
perspective-correct by construction: no screen-space interpolation and division by 1/w, the
direction d is exactly the ray `dreamer.render.rays` casts, and autograd differentiates it as is.
e_k is affine in the pixel coordinates (a homogeneous edge function), so the visibility pass
evaluates the same quantity per pair with three multiply-adds; the pixel is covered when the three
e_k share a sign (either sign: both sides render). The depth is Σ b_k z_k, the hit point's z.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.render.mesh.project import pinhole, pixel_directions, world_to_camera

CHUNK_PAIRS = 1 << 19  # (triangle, pixel) pairs evaluated at once in the visibility pass
_EMPTY = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """What each pixel of B images sees of a triangle mesh."""

    triangle_id: torch.Tensor  # [B, H, W] long, −1 where no triangle covers the pixel (no grad)
    bary: torch.Tensor  # [B, H, W, 3] perspective-correct barycentrics of the pixel centre; 0 where empty
    depth: torch.Tensor  # [B, H, W, 1] camera-space depth along the view axis (> 0); 0 where empty
    mask: torch.Tensor  # [B, H, W, 1] float, 1 where covered (no grad)


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera, *, near: float = 0.05,
              chunk_pairs: int = CHUNK_PAIRS) -> Fragments:
    """Rasterize a mesh (vertices [V, 3] world space, faces [F, 3] long) into all B cameras.

    `bary` and `depth` are differentiable w.r.t. `vertices` (and the camera pose); the choice of
    triangle per pixel is not (see `antialias` for silhouette gradients).
    """
    assert vertices.ndim == 2 and vertices.shape[1] == 3, vertices.shape
    assert faces.ndim == 2 and faces.shape[1] == 3, faces.shape
    faces = faces.long()
    verts_cam = world_to_camera(vertices, camera)  # [B, V, 3]
    triangle_id = visible_triangles(verts_cam.detach(), faces, camera, near, chunk_pairs)
    return fragments_for(verts_cam, faces, camera, triangle_id)


def edge_functions(tri: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """e_k = d · (v_{k+1} × v_{k+2}) [..., 3] for triangles tri [..., 3, 3] and directions d [..., 3]."""
    cross = torch.cross(tri.roll(-1, dims=-2), tri.roll(-2, dims=-2), dim=-1)  # row k: v_{k+1} × v_{k+2}
    return (cross * d[..., None, :]).sum(-1)


@torch.no_grad()
def visible_triangles(verts_cam: torch.Tensor, faces: torch.Tensor, camera: Camera, near: float,
                      chunk_pairs: int = CHUNK_PAIRS) -> torch.Tensor:
    """Nearest triangle per pixel [B, H, W] (long, −1 = none) from camera-space vertices [B, V, 3]."""
    B, H, W = len(camera), camera.height, camera.width
    n_faces = faces.shape[0]
    tri = verts_cam[:, faces]  # [B, F, 3 vertices, 3 xyz]
    z = tri[..., 2]  # [B, F, 3]
    f, cx, cy = (t[:, None, None] for t in pinhole(camera, tri.dtype))  # [B, 1, 1]
    safe_z = z.clamp_min(near)  # culled triangles only need finite boxes
    sx, sy = f * tri[..., 0] / safe_z + cx, f * tri[..., 1] / safe_z + cy  # [B, F, 3] pixels
    # Box of the pixel centres (i + 0.5) inside the projected triangle's bounding box.
    x0 = torch.ceil(sx.amin(-1) - 0.5).clamp_min(0).long()  # [B, F]
    x1 = torch.floor(sx.amax(-1) - 0.5).clamp_max(W - 1).long()
    y0 = torch.ceil(sy.amin(-1) - 0.5).clamp_min(0).long()
    y1 = torch.floor(sy.amax(-1) - 0.5).clamp_max(H - 1).long()

    cross = torch.cross(tri.roll(-1, dims=2), tri.roll(-2, dims=2), dim=-1)  # [B, F, 3, 3]
    det = (tri[..., 0, :] * cross[..., 0, :]).sum(-1)  # [B, F] v₀ · (v₁ × v₂); 0: edge-on
    keep = (z > near).all(-1) & (x0 <= x1) & (y0 <= y1) & (det != 0)
    cand = keep.flatten().nonzero().squeeze(1)  # indices into B × F
    if len(cand) == 0:
        return torch.full((B, H, W), -1, dtype=torch.long, device=verts_cam.device)

    batch, face = cand // n_faces, cand % n_faces
    x0, y0 = x0.flatten()[cand], y0.flatten()[cand]
    box_w = x1.flatten()[cand] - x0 + 1
    counts = box_w * (y1.flatten()[cand] - y0 + 1)  # [C] pixel centres per box
    # Fold the pixel → direction map d = ((i + 0.5 − cx) / f, (j + 0.5 − cy) / f, 1) into the
    # edge functions: e_k = a_k i + b_k j + c_k per candidate (sign-symmetric ops, so a shared
    # edge gives exactly opposite values in its two triangles: no cracks between them).
    c3 = cross.flatten(0, 1)[cand]  # [C, 3, 3]
    fb, cxb, cyb = (t.flatten()[batch, None] for t in (f[:, 0], cx[:, 0], cy[:, 0]))  # [C, 1]
    coef = torch.stack([c3[..., 0] / fb, c3[..., 1] / fb,
                        c3[..., 2] + c3[..., 0] * ((0.5 - cxb) / fb) + c3[..., 1] * ((0.5 - cyb) / fb)],
                       dim=-1)  # [C, 3 edges, 3 (a, b, c)]
    det = det.flatten()[cand]
    pixel_base = batch * (H * W)

    keys = torch.full((B * H * W,), _EMPTY, dtype=torch.long, device=verts_cam.device)
    ends = torch.cumsum(counts, 0)
    start = 0
    while start < len(cand):
        # Take candidates until the pair count reaches chunk_pairs (at least one).
        offset = int(ends[start - 1]) if start > 0 else 0
        stop = max(int(torch.searchsorted(ends, offset + chunk_pairs, right=True)), start + 1)
        sl = slice(start, stop)
        owner = torch.repeat_interleave(counts[sl])  # [P] candidate (within chunk) of each pair
        local = torch.arange(len(owner), device=keys.device) - (ends[sl] - counts[sl] - offset)[owner]
        bw = box_w[sl][owner]
        px, py = x0[sl][owner] + local % bw, y0[sl][owner] + local // bw  # [P] pixel column, row
        k = coef[sl][owner]  # [P, 3, 3]
        e = k[..., 0] * px[:, None] + k[..., 1] * py[:, None] + k[..., 2]  # [P, 3]
        inside = (e >= 0).all(-1) | (e <= 0).all(-1)
        s = e.sum(-1)
        depth = det[sl][owner] / torch.where(s == 0, torch.ones_like(s), s)
        inside &= (s != 0) & (depth > 0)
        # Positive float32 bit patterns sort like the floats, so min(key) = nearest, ties → lower face.
        depth_bits = depth[inside].float().view(torch.int32).long()
        key = depth_bits * n_faces + face[sl][owner][inside]
        pixel = (pixel_base[sl][owner] + py * W + px)[inside]
        keys.scatter_reduce_(0, pixel, key, reduce="amin")
        start = stop

    triangle_id = torch.where(keys == _EMPTY, -1, keys % n_faces)
    return triangle_id.view(B, H, W)


def fragments_for(verts_cam: torch.Tensor, faces: torch.Tensor, camera: Camera,
                  triangle_id: torch.Tensor) -> Fragments:
    """Differentiable barycentrics and depth at the pixel centres for a given triangle_id map."""
    B, H, W = triangle_id.shape
    n_verts, dtype = verts_cam.shape[1], verts_cam.dtype
    flat = triangle_id.reshape(-1)
    pix = (flat >= 0).nonzero().squeeze(1)  # [N] covered pixels
    batch, rest = pix // (H * W), pix % (H * W)
    tri = verts_cam.reshape(B * n_verts, 3)[batch[:, None] * n_verts + faces[flat[pix]]]  # [N, 3, 3]
    d = pixel_directions(camera, batch, rest % W, rest // W, dtype)  # [N, 3]
    e = edge_functions(tri, d)  # [N, 3]
    s = e.sum(-1, keepdim=True)
    # Only an edge-on triangle has s ≈ 0 (the visibility pass rejects s = 0); keep it finite.
    tiny = torch.finfo(dtype).tiny
    s = torch.where(s.abs() < tiny, torch.where(s < 0, -tiny, tiny), s)
    bary = e / s  # [N, 3]
    depth = (bary * tri[..., 2]).sum(-1, keepdim=True)  # [N, 1]
    zeros = verts_cam.new_zeros
    return Fragments(
        triangle_id=triangle_id,
        bary=zeros(B * H * W, 3).index_copy(0, pix, bary).view(B, H, W, 3),
        depth=zeros(B * H * W, 1).index_copy(0, pix, depth).view(B, H, W, 1),
        mask=(triangle_id >= 0).to(dtype)[..., None],
    )
