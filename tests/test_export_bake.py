"""The baking parts against slow, obvious twins: UV rasterization, seam padding, the unwrap."""

import numpy as np
import pytest
import trimesh

from dreamer.export import uv_raster
from dreamer.export.bake import bake_texture
from dreamer.export.seams import pad_charts
from dreamer.export.unwrap import unwrap
from dreamer.export.uv_raster import rasterize_uv


def reference_raster(uv, faces, size):
    """Every (row, col, face) whose texel centre is inside the face, by a loop over texels."""
    hits = {}
    for f, (i, j, k) in enumerate(faces):
        a, b, c = (np.array([uv[v, 0] * size, (1 - uv[v, 1]) * size]) for v in (i, j, k))
        m = np.array([b - a, c - a]).T
        if abs(np.linalg.det(m)) < 1e-12:
            continue
        for r in range(size):
            for col in range(size):
                l1, l2 = np.linalg.solve(m, np.array([col + 0.5, r + 0.5]) - a)
                if min(l1, l2, 1 - l1 - l2) >= 0:
                    hits[(r, col, f)] = (1 - l1 - l2, l1, l2)
    return hits


@pytest.mark.parametrize("chunk", [uv_raster.CANDIDATES_PER_CHUNK, 5])
def test_rasterize_uv_matches_a_per_texel_loop(chunk, monkeypatch):
    monkeypatch.setattr(uv_raster, "CANDIDATES_PER_CHUNK", chunk)
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, 1, (12, 2))
    faces = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [0, 0, 1]])  # the last is degenerate
    size = 24
    fast = rasterize_uv(uv, faces, size)
    slow = reference_raster(uv, faces, size)
    got = {(r, c, f): bary for r, c, f, bary in zip(fast.rows, fast.cols, fast.face, fast.bary)}
    assert set(got) == set(slow) and len(got) == len(fast.rows) > 50
    for key, bary in slow.items():
        np.testing.assert_allclose(got[key], bary, atol=1e-9)


def test_pad_charts_dilates_nearest_colours_then_fills_the_mean():
    image = np.zeros((16, 16, 3), dtype=np.float32)
    covered = np.zeros((16, 16), dtype=bool)
    image[4:6, 4:6] = [1.0, 0.0, 0.0]
    image[10:12, 10:12] = [0.0, 0.0, 1.0]
    covered[4:6, 4:6] = covered[10:12, 10:12] = True
    out = pad_charts(image, covered, pixels=2)
    np.testing.assert_array_equal(out[covered], image[covered])
    np.testing.assert_array_equal(out[2, 4], [1, 0, 0])  # 2 texels above the red chart
    np.testing.assert_array_equal(out[13, 11], [0, 0, 1])  # 2 texels below the blue chart
    np.testing.assert_allclose(out[0, 15], [0.5, 0, 0.5])  # far from both: the mean chart colour
    np.testing.assert_array_equal(pad_charts(image, np.zeros_like(covered), 2), image)  # nothing to pad from


def test_unwrap_splits_vertices_but_keeps_every_triangle():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    uv_mesh = unwrap(mesh.vertices, mesh.faces, texture_size=128, padding=2)
    assert len(uv_mesh.faces) == len(mesh.faces) and uv_mesh.charts >= 1
    assert len(uv_mesh.vertices) >= len(mesh.vertices) and uv_mesh.uv.shape == (len(uv_mesh.vertices), 2)
    np.testing.assert_allclose(uv_mesh.vertices, mesh.vertices[uv_mesh.source])
    original = {tuple(sorted(f)) for f in mesh.faces.tolist()}
    assert {tuple(sorted(f)) for f in uv_mesh.source[uv_mesh.faces].tolist()} == original
    assert 0.0 <= uv_mesh.uv.min() and uv_mesh.uv.max() <= 1.0


def test_bake_colours_each_texel_at_its_surface_point():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    uv_mesh = unwrap(mesh.vertices, mesh.faces, texture_size=64, padding=0)
    seen = []

    def colour(points):
        seen.append(points)
        return np.clip(0.5 + 0.5 * points, 0, 1)

    baked = bake_texture(uv_mesh, colour, size=64, padding=0)
    assert baked.image.shape == (64, 64, 3) and baked.image.dtype == np.uint8
    points = np.concatenate(seen)
    radius = np.linalg.norm(points, axis=1)  # on the flat faces of a unit icosphere
    assert radius.max() <= 1.0 + 1e-9 and radius.min() > 0.9
    assert 0.2 < baked.coverage < 1.0
