"""Camera-space vertices and pixel-centre rays for the mesh rasterizer.

Frame: OpenCV (x right, y down, z forward = depth), the splat rasterizer's frame. Pixel (row j,
column i) has its centre at (i + 0.5, j + 0.5) and row 0 is the top of the image, so the ray
through it is exactly the one `dreamer.render.rays.camera_rays` generates (there in the OpenGL
frame: y and z flipped).
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera

# OpenGL camera frame (−Z forward, +Y up) → OpenCV frame (+Z forward, +Y down): flip y and z.
_GL_TO_CV = (1.0, -1.0, -1.0)


def world_to_camera(vertices: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Vertices [V, 3] (world) → [B, V, 3] in each camera's OpenCV frame; differentiable."""
    w2c = camera.w2c.to(vertices.dtype)  # [B, 4, 4]
    flip = torch.tensor(_GL_TO_CV, dtype=vertices.dtype, device=vertices.device)
    rot = w2c[:, :3, :3] * flip[None, :, None]  # flip the output rows
    trans = w2c[:, :3, 3] * flip
    return torch.einsum("bij,vj->bvi", rot, vertices) + trans[:, None, :]


def pinhole(camera: Camera, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(focal [B], cx [B], cy [B]) in pixels: the principal point is the image centre."""
    f = camera.focal.to(dtype)
    return f, torch.full_like(f, camera.width / 2), torch.full_like(f, camera.height / 2)


def pixel_directions(camera: Camera, batch: torch.Tensor, px: torch.Tensor, py: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Camera-frame directions [N, 3] with z = 1 through the centres of pixels (px, py) [N] (long)
    of cameras `batch` [N]."""
    f, cx, cy = (t[batch] for t in pinhole(camera, dtype))
    x = (px.to(dtype) + 0.5 - cx) / f
    y = (py.to(dtype) + 0.5 - cy) / f
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)
