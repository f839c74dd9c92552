"""Texture baking: the colour function evaluated at the 3D surface point of every chart texel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer.export.colour import ColourFn
from dreamer.export.seams import pad_charts
from dreamer.export.unwrap import UVMesh
from dreamer.export.uv_raster import rasterize_uv


@dataclass
class BakedTexture:
    image: np.ndarray  # [S, S, 3] uint8, row 0 = top (v = 1)
    coverage: float  # fraction of texels inside a chart


def bake_texture(mesh: UVMesh, colour_fn: ColourFn, size: int, padding: int) -> BakedTexture:
    """Rasterize `mesh`'s UV triangles at `size`², colour each covered texel by `colour_fn` at
    its surface point (barycentric blend of the triangle's corners), then pad the seams."""
    hits = rasterize_uv(mesh.uv, mesh.faces, size)
    corners = mesh.vertices[mesh.faces[hits.face]]  # [T, 3, 3]
    points = np.einsum("tk,tkd->td", hits.bary, corners)  # [T, 3]
    image = np.zeros((size, size, 3), dtype=np.float32)
    covered = np.zeros((size, size), dtype=bool)
    image[hits.rows, hits.cols] = np.clip(colour_fn(points), 0.0, 1.0)
    covered[hits.rows, hits.cols] = True
    image = pad_charts(image, covered, padding)
    return BakedTexture(image=np.round(image * 255.0).astype(np.uint8), coverage=float(covered.mean()))
