"""Ray generation for a batch of cameras (pixel centres)."""

from __future__ import annotations

import torch

from dreamer.cameras import Camera


def camera_rays(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions, each [B, H, W, 3], in world space.

    Row 0 is the top of the image; column 0 is the left.
    """
    B, H, W = len(camera), camera.height, camera.width
    device, dtype = camera.device, camera.c2w.dtype
    j, i = torch.meshgrid(
        torch.arange(H, device=device, dtype=dtype) + 0.5,
        torch.arange(W, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    f = camera.focal.to(dtype).view(B, 1, 1)
    x = (i - W / 2) / f  # [B, H, W]
    y = -(j - H / 2) / f
    dirs_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # [B, H, W, 3]
    rot = camera.c2w[:, :3, :3]  # [B, 3, 3]
    dirs = torch.einsum("bij,bhwj->bhwi", rot, dirs_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = camera.c2w[:, None, None, :3, 3].expand_as(dirs)
    return origins, dirs
