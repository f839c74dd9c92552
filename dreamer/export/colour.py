"""The colour-query contract of exports: a function from surface points to albedo.

A representation with colour (a `dreamer.representations.base.ColourField`) has
`colour_at(points [N, 3] tensor) -> [N, 3] in [0, 1]` (NeRF: its albedo field); the caller hands
that method to `torch_colour_fn` (exports never import representations). The exporter works from
(mesh, colour function), so it re-queries colour after decimation and at every texel of a baked
texture. Meshes without a colour function get one made from their own vertex colours.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import trimesh

ColourFn = Callable[[np.ndarray], np.ndarray]  # points [N, 3] float -> rgb [N, 3] float in [0, 1]


def torch_colour_fn(colour_at: Callable, device) -> ColourFn:
    """A numpy colour function over a torch one (`colour_at(points [N, 3]) -> rgb [N, 3]` on `device`)."""
    import torch

    def fn(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)
            return colour_at(x).float().clamp(0, 1).cpu().numpy()

    return fn


def has_vertex_colours(mesh: trimesh.Trimesh) -> bool:
    return mesh.visual.kind == "vertex"


def vertex_colour_fn(mesh: trimesh.Trimesh, neighbours: int = 4) -> ColourFn:
    """Colour of the nearest vertices of `mesh`, inverse-distance weighted (a smooth stand-in
    for the colour field when a mesh only carries vertex colours)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(mesh.vertices, dtype=np.float64))
    rgb = mesh.visual.vertex_colors[:, :3].astype(np.float64) / 255.0  # [V, 3]
    k = min(neighbours, len(rgb))

    def fn(points: np.ndarray) -> np.ndarray:
        dist, idx = tree.query(np.asarray(points, dtype=np.float64), k=k)
        dist, idx = dist.reshape(len(points), k), idx.reshape(len(points), k)
        w = 1.0 / np.maximum(dist, 1e-9)  # an exact hit dominates
        w /= w.sum(axis=1, keepdims=True)
        return (w[..., None] * rgb[idx]).sum(axis=1)

    return fn


def to_rgba8(rgb: np.ndarray) -> np.ndarray:
    """[N, 3] float in [0, 1] -> [N, 4] uint8, opaque."""
    out = np.full((len(rgb), 4), 255, dtype=np.uint8)
    out[:, :3] = np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)
    return out
