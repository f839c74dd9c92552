"""Image helpers: tensors in [0, 1] to PNG files and contact sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dreamer.io import atomic_save


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """[H, W, 3] float in [0, 1] -> uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def tile_row(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] -> [H, B*W, 3] side by side."""
    return torch.cat(list(images), dim=1)


def tile_grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    """[B, H, W, 3] -> a grid with `columns` images per row (padded with white)."""
    B, H, W, C = images.shape
    rows = -(-B // columns)
    pad = rows * columns - B
    if pad:
        images = torch.cat([images, torch.ones(pad, H, W, C, dtype=images.dtype, device=images.device)])
    return images.reshape(rows, columns, H, W, C).permute(0, 2, 1, 3, 4).reshape(rows * H, columns * W, C)


def save_image(path: Path | str, image: torch.Tensor | np.ndarray) -> Path:
    import imageio.v3 as iio

    path = Path(path)
    data = to_uint8(image)
    atomic_save(path, lambda p: iio.imwrite(p, data, extension=".png"))
    return path
