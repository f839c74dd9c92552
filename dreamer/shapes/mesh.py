"""Ground-truth meshes: marching cubes of an `ObjectSpec`'s SDF with part colours per vertex."""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from skimage.measure import marching_cubes

from dreamer.shapes.spec import ObjectSpec, sdf_and_colour

GRID_CHUNK = 262_144  # points per SDF evaluation, bounds memory at high resolution


def sdf_grid(spec: ObjectSpec, resolution: int) -> np.ndarray:
    """SDF sampled at resolution^3 points spanning [-1, 1]^3, indexed [x, y, z]."""
    axis = torch.linspace(-1.0, 1.0, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.no_grad():
        values = torch.cat([spec.object.sdf(chunk) for chunk in grid.split(GRID_CHUNK)])
    return values.reshape(resolution, resolution, resolution).numpy()


def spec_mesh(spec: ObjectSpec, resolution: int = 128) -> trimesh.Trimesh:
    """Zero level set of the SDF over [-1, 1]^3, outward-facing, world coordinates,
    vertex colours (RGBA uint8) taken from the nearest part (unshaded albedo)."""
    if resolution < 8:
        raise ValueError(f"resolution must be >= 8, got {resolution}")
    spacing = 2.0 / (resolution - 1)
    # With the default gradient_direction ("descent") the faces of an SDF (low inside) wind
    # outwards; the tests check this through a positive mesh volume.
    verts, faces, _, _ = marching_cubes(sdf_grid(spec, resolution), level=0.0, spacing=(spacing,) * 3)
    verts = verts - 1.0
    with torch.no_grad():
        _, rgb = sdf_and_colour(spec, torch.from_numpy(verts.astype(np.float32)))
    rgba = np.concatenate([rgb.numpy(), np.ones((len(verts), 1), dtype=np.float32)], axis=1)
    colours = np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)
    return trimesh.Trimesh(vertices=verts, faces=faces, vertex_colors=colours, process=False)
