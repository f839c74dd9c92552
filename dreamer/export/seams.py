"""Seam padding: dilate chart colours into the empty texels around charts, so that bilinear
filtering and mipmaps read chart colours, not background, at chart edges."""

from __future__ import annotations

import numpy as np


def pad_charts(image: np.ndarray, covered: np.ndarray, pixels: int) -> np.ndarray:
    """image [H, W, C] float, covered [H, W] bool -> a copy where each empty texel within
    `pixels` texels of a chart takes the colour of its nearest chart texel, and every other
    empty texel the mean chart colour (flat areas compress well and blend in at small mips)."""
    from scipy.ndimage import distance_transform_edt

    out = image.copy()
    if not covered.any():
        return out
    empty = ~covered
    out[empty] = image[covered].mean(axis=0)
    if pixels > 0 and empty.any():
        dist, (rows, cols) = distance_transform_edt(empty, return_indices=True)
        near = empty & (dist <= pixels)
        out[near] = image[rows[near], cols[near]]
    return out
