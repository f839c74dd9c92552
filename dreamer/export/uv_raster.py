"""Rasterize UV triangles: for each texel centre inside a triangle, that triangle and the
barycentric coordinates of the centre (vectorised over triangles, chunked to bound memory)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES_PER_CHUNK = 1 << 22  # texel candidates (bounding-box texels) per vectorised pass


@dataclass
class TexelHits:
    """Texels covered by the UV triangles; row 0 is the top of the image (v = 1)."""

    rows: np.ndarray  # [T] int64
    cols: np.ndarray  # [T] int64
    face: np.ndarray  # [T] int64 index of the covering triangle
    bary: np.ndarray  # [T, 3] float64 barycentric coordinates of the texel centre in that triangle


def rasterize_uv(uv: np.ndarray, faces: np.ndarray, size: int, eps: float = 1e-7) -> TexelHits:
    """Texels of a `size`² image whose centres lie in a triangle `faces` [F, 3] of `uv` [V, 2].

    A centre on an edge shared by two triangles is reported for both (either is right)."""
    # image coordinates: x right, y down, texel (r, c) has its centre at (c + 0.5, r + 0.5)
    xy = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], axis=1)
    tri = xy[faces]  # [F, 3, 2]
    lo = np.clip(np.ceil(tri.min(axis=1) - 0.5), 0, size - 1).astype(np.int64)  # first centre inside the box
    hi = np.clip(np.floor(tri.max(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    extent = np.maximum(hi - lo + 1, 0)  # [F, 2] (width, height) in texels
    counts = extent[:, 0] * extent[:, 1]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    counts[np.abs(area) < 1e-12] = 0  # degenerate in UV: covers no texel centre

    out: list[tuple[np.ndarray, ...]] = []
    ends = np.cumsum(counts)
    start = 0
    while start < len(faces):
        # the largest run of faces whose candidates fit in a chunk (at least one face)
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + CANDIDATES_PER_CHUNK, side="right")), start + 1)
        out.append(_rasterize_chunk(np.arange(start, stop), counts, lo, extent, a, b, c, area, eps))
        start = stop
    rows, cols, face, bary = (np.concatenate(parts) for parts in zip(*out))
    return TexelHits(rows=rows, cols=cols, face=face, bary=bary)


def _rasterize_chunk(ids, counts, lo, extent, a, b, c, area, eps):
    n = counts[ids]
    f = np.repeat(ids, n)  # [K] face of each candidate texel
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # index inside its face's box
    width = extent[f, 0]
    cols = lo[f, 0] + k % np.maximum(width, 1)
    rows = lo[f, 1] + k // np.maximum(width, 1)
    px, py = cols + 0.5, rows + 0.5
    # barycentrics from signed sub-triangle areas (edge functions)
    l0 = ((b[f, 0] - px) * (c[f, 1] - py) - (b[f, 1] - py) * (c[f, 0] - px)) / area[f]
    l1 = ((c[f, 0] - px) * (a[f, 1] - py) - (c[f, 1] - py) * (a[f, 0] - px)) / area[f]
    l2 = 1.0 - l0 - l1
    inside = (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
    bary = np.stack([l0, l1, l2], axis=1)[inside]
    return rows[inside], cols[inside], f[inside], np.clip(bary, 0.0, 1.0)
