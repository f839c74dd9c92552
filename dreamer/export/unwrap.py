"""UV unwrapping with xatlas: charts cut along seams, packed into one square atlas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer.errors import UserError


@dataclass
class UVMesh:
    """A mesh whose vertices are split along UV seams (each vertex has one UV)."""

    vertices: np.ndarray  # [V, 3] float64 positions
    faces: np.ndarray  # [F, 3] int64
    uv: np.ndarray  # [V, 2] float64 in [0, 1]; origin bottom-left (OpenGL/OBJ convention)
    source: np.ndarray  # [V] int64: index of each vertex in the mesh that was unwrapped
    charts: int  # number of UV charts


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int) -> UVMesh:
    """xatlas charts packed for a `texture_size`² texture with `padding` texels between charts."""
    try:
        import xatlas
    except ImportError:
        raise UserError("UV unwrapping needs xatlas: pip install xatlas (or export with texture off)") from None
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, dtype=np.float32), np.ascontiguousarray(faces, dtype=np.uint32))
    pack = xatlas.PackOptions()
    # resolution + texels_per_unit 0: xatlas picks the scale so that one atlas of about this
    # side holds every chart (its exact side may differ a little; UVs come back normalised).
    pack.resolution = texture_size
    pack.padding = padding
    pack.bilinear = True  # leave room for the texels that bilinear filtering reads at chart edges
    atlas.generate(xatlas.ChartOptions(), pack)
    if atlas.atlas_count != 1:  # some charts did not fit: let xatlas size the atlas itself
        atlas = xatlas.Atlas()
        atlas.add_mesh(np.ascontiguousarray(vertices, dtype=np.float32),
                       np.ascontiguousarray(faces, dtype=np.uint32))
        pack.resolution = 0
        atlas.generate(xatlas.ChartOptions(), pack)
    source, indices, uv = atlas[0]
    return UVMesh(vertices=np.asarray(vertices, dtype=np.float64)[source.astype(np.int64)],
                  faces=indices.astype(np.int64), uv=np.clip(uv.astype(np.float64), 0.0, 1.0),
                  source=source.astype(np.int64), charts=int(atlas.chart_count))
