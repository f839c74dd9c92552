"""Decimation to a face cap by quadric edge collapse (`fast-simplification`, trimesh's backend)."""

from __future__ import annotations

import numpy as np
import trimesh

from dreamer.errors import UserError


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [V', 3] float64, faces [F', 3] int64) with F' <= max_faces; the input when it
    already fits. Degenerate faces and unused vertices are dropped. Colours are not carried:
    re-query them at the new vertices."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) <= max_faces:
        return vertices, faces
    try:
        from fast_simplification import simplify
    except ImportError:
        raise UserError("decimating the mesh needs fast-simplification: pip install fast-simplification") from None
    v, f = simplify(vertices, faces, target_count=max_faces)
    mesh = trimesh.Trimesh(v, f, process=True)  # process: merge duplicate vertices
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
    if len(f) > max_faces:  # never seen; keep the promise anyway
        f = f[:max_faces]
    return v, f
