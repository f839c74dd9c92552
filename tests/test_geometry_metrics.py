"""3D metrics of an exported mesh against the ground truth, checked on oracle meshes with known answers."""

import math

import numpy as np
import pytest
import trimesh

from dreamer.eval.geometry import (EXACT_WITHIN, SURFACE_SAMPLES, geometry_metrics, load_mesh, solid_occupancy,
                                   surface_distance, surface_samples, weld)
from dreamer.shapes import parse_prompt, spec_mesh

pytestmark = pytest.mark.slow(seconds=20)  # a mid-sized file: scheduled early (tests/conftest.py)

CUBE = 0.7  # the library cube's side
CELL_TOLERANCE = 0.04  # one grid cell of 128 over [-1, 1]³ moves a 0.7 cube's IoU by up to about this


@pytest.fixture(scope="module")
def cube_truth():
    return spec_mesh(parse_prompt("a red cube"))


def box(size=CUBE, shift=(0.0, 0.0, 0.0)):
    mesh = trimesh.creation.box((size,) * 3)
    mesh.apply_translation(shift)
    return mesh


def test_ground_truth_against_itself_is_perfect(cube_truth):
    m = geometry_metrics(cube_truth, cube_truth)
    assert m.volume_iou == 1.0 and m.chamfer_l1 == 0.0
    assert m.fscore_002 == 1.0 and m.fscore_005 == 1.0 and m.normal_consistency == pytest.approx(1.0)
    assert m.extent_error == [0.0, 0.0, 0.0]
    assert m.extent_gt == pytest.approx([CUBE] * 3, abs=1e-3)


def test_library_cube_matches_an_analytic_box(cube_truth):
    m = geometry_metrics(box(), cube_truth)
    assert m.volume_iou > 0.97 and m.chamfer_l1 < 0.005 and m.fscore_002 > 0.95
    assert m.volume == pytest.approx(CUBE ** 3, rel=0.05)


@pytest.mark.parametrize("shift", [0.05, 0.1, 0.2])
def test_a_known_shift_gives_its_known_iou_and_no_extent_error(cube_truth, shift):
    m = geometry_metrics(box(shift=(shift, 0.0, 0.0)), cube_truth)
    assert m.volume_iou == pytest.approx((CUBE - shift) / (CUBE + shift), abs=CELL_TOLERANCE)
    assert max(m.extent_error) < 0.005
    # no re-centring: the two faces normal to x are `shift` apart, the other four overlap in part
    assert m.chamfer_l1 > shift / 6


@pytest.mark.parametrize("scale", [1.1, 1.5])
def test_a_known_scale_gives_its_known_iou_and_extent_error(cube_truth, scale):
    m = geometry_metrics(box(CUBE * scale), cube_truth)
    assert m.volume_iou == pytest.approx(1 / scale ** 3, abs=CELL_TOLERANCE)
    assert m.extent_error == pytest.approx([CUBE * (scale - 1)] * 3, abs=0.005)
    # every face of the larger box lies CUBE·(scale − 1)/2 outside the smaller one's
    assert m.chamfer_l1 == pytest.approx(CUBE * (scale - 1) / 2, rel=0.25)


def test_a_cylinder_standing_in_for_a_cube(cube_truth):
    cylinder = trimesh.creation.cylinder(CUBE / 2, CUBE, sections=64)  # a 64-gon: area within 0.2 % of the circle
    cylinder.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))  # axis along +Y
    m = geometry_metrics(cylinder, cube_truth)
    assert m.volume_iou == pytest.approx(math.pi / 4, abs=0.02)  # inscribed: πr²h / (2r)³
    assert m.extent_error == pytest.approx([0.0] * 3, abs=0.005)
    assert 0.6 < m.fscore_005 < 0.85 and m.normal_consistency < 0.95


def test_an_inside_out_copy_has_the_opposite_normals(cube_truth):
    inside_out = cube_truth.copy()
    inside_out.invert()  # the same surface, every face wound the other way
    assert geometry_metrics(cube_truth, cube_truth).normal_consistency == pytest.approx(1.0)
    m = geometry_metrics(inside_out, cube_truth)
    assert m.normal_consistency == pytest.approx(-1.0, abs=0.01)  # |cos| scored this 1
    assert m.chamfer_l1 < 1e-9 and m.fscore_002 == 1.0  # the distances do not see orientation


@pytest.mark.parametrize("samples", [1_000, SURFACE_SAMPLES])
def test_two_tessellations_of_one_cube_are_the_same_surface(samples):
    coarse = box()  # 12 triangles
    fine = box().subdivide().subdivide().subdivide()  # 768 triangles on the same six faces
    for result, truth in ((coarse, fine), (fine, coarse)):
        m = geometry_metrics(result, truth, samples=samples)
        # nearest-sample distances read 0.027 / 0.005 here (and F-score@0.02 0.35 at 1000 samples)
        assert m.chamfer_l1 < 1e-9
        assert m.fscore_002 == 1.0 and m.fscore_005 == 1.0
        assert m.normal_consistency == pytest.approx(1.0)


def test_point_to_surface_distances_are_exact_near_the_surface(cube_truth):
    points = np.random.default_rng(3).uniform(-0.5, 0.5, (120, 3))
    samples, _, faces = surface_samples(cube_truth, with_faces=True)
    distance, face = surface_distance(points, cube_truth, samples, faces)
    tris = cube_truth.triangles
    brute = np.array([np.linalg.norm(trimesh.triangles.closest_point(tris, np.repeat(p[None], len(tris), 0)) - p,
                                     axis=1).min() for p in points])
    close = brute < 0.95 * EXACT_WITHIN
    assert close.sum() > 40
    assert distance[close] == pytest.approx(brute[close], abs=1e-9)
    # farther out: an upper bound, off by a fraction of a percent
    assert np.all(distance >= brute - 1e-12) and distance == pytest.approx(brute, rel=0.01)
    nearest = trimesh.triangles.closest_point(tris[face], points)  # the face returned holds the closest point
    assert np.linalg.norm(nearest - points, axis=1) == pytest.approx(distance)


def test_an_open_shell_counts_only_its_walls(cube_truth):
    shell = box()
    shell.update_faces(shell.face_normals[:, 1] > -0.5)  # no bottom: an upturned bucket
    m = geometry_metrics(shell, cube_truth)
    assert m.volume_iou < 0.1
    assert m.extent_error == pytest.approx([0.0] * 3, abs=0.005)  # the outline alone fits perfectly


def test_uv_seams_are_welded_before_inside_outside(cube_truth):
    # every face with its own three vertices, as a UV-seamed textured export writes them
    mesh = box()
    split = trimesh.Trimesh(mesh.triangles.reshape(-1, 3), np.arange(len(mesh.faces) * 3).reshape(-1, 3), process=False)
    assert not split.is_watertight and weld(split).is_watertight
    assert geometry_metrics(split, cube_truth).volume_iou > 0.97


def test_an_empty_result_scores_nothing(cube_truth):
    m = geometry_metrics(trimesh.Trimesh(), cube_truth)
    assert (m.volume_iou, m.fscore_002, m.fscore_005, m.normal_consistency) == (0.0, 0.0, 0.0, 0.0)
    assert m.chamfer_l1 == 1.0 and m.extent_error == pytest.approx([CUBE] * 3, abs=1e-3)


def test_occupancy_fills_a_closed_sphere_and_ignores_outside_the_box():
    sphere = trimesh.creation.icosphere(4, 0.5)
    occupancy = solid_occupancy(sphere, 64)
    assert occupancy.shape == (64, 64, 64)
    assert occupancy.sum() * (2 / 64) ** 3 == pytest.approx(4 / 3 * math.pi * 0.5 ** 3, rel=0.03)
    assert solid_occupancy(trimesh.creation.icosphere(3, 0.2).apply_translation([5, 0, 0]), 32).sum() == 0


def test_a_textured_glb_reads_back_in_the_world_frame(tmp_path, cube_truth):
    from dreamer.export.pipeline import export_mesh

    moved = box(shift=(0.1, 0.0, 0.0))
    moved.visual.vertex_colors = np.tile([200, 30, 30, 255], (len(moved.vertices), 1)).astype(np.uint8)
    export = export_mesh(moved, None, tmp_path)  # textured: seams split the vertices
    assert export.textured
    loaded = load_mesh(export.paths["glb"])
    assert len(loaded.vertices) > len(moved.vertices)
    m = geometry_metrics(loaded, cube_truth)
    assert m.volume_iou == pytest.approx(0.6 / 0.8, abs=CELL_TOLERANCE)


def test_faces_in_reach_but_ruled_out_by_their_plane_leave_the_distance_unbounded():
    import numpy as np

    from dreamer.eval.geometry import _nearest_in_group, _Triangles

    corners = np.array([[[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [0.0, 0.0, 1.0]]])  # one large flat face
    centroid = corners.mean(1)
    tris = _Triangles(corners, centroid, np.linalg.norm(corners - centroid[:, None], axis=2).max(1),
                      np.array([[0.0, 1.0, 0.0]]))
    points = np.array([[0.0, 0.3, 0.0]])  # within the face's bounding sphere, 0.3 above its plane
    dist, face = _nearest_in_group(points, tris, np.array([0]), np.array([0.1]))
    assert np.isinf(dist[0]) and face[0] == -1
    dist, face = _nearest_in_group(points, tris, np.array([0]), np.array([0.5]))
    assert dist[0] == pytest.approx(0.3) and face[0] == 0
