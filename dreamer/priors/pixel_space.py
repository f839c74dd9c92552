"""The one mapping between renders and pixel-space priors' inputs (reference, tiny)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def encode_pixels(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """[B,3,H,W] in [0,1] -> [B,3,size,size] in [−1,1]; bilinear (antialiased when shrinking), differentiable."""
    assert rgb.ndim == 4 and rgb.shape[1] == 3, rgb.shape
    if tuple(rgb.shape[-2:]) != (size, size):
        shrink = rgb.shape[-1] > size or rgb.shape[-2] > size
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return rgb * 2.0 - 1.0


def decode_pixels(z: torch.Tensor) -> torch.Tensor:
    """[−1,1] -> [0,1], clamped."""
    return ((z + 1.0) / 2.0).clamp(0.0, 1.0)
