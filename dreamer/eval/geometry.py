"""3D metrics of an exported mesh against the shape library's ground-truth mesh (issue 19).

Both meshes are compared as they are, in the world frame: no re-centring and no re-scaling, since
size and placement are part of the answer. A silhouette can fit a wrong solid (a cylinder matches a
cube's diagonal views; an open shell matches every view of a solid), so these look at the volume
and the surface themselves.

- `volume_iou`: IoU of the solids on a grid over [-1, 1]³. A cell is inside when the surface
  passes through it or it is cut off from the grid's border by the surface (a flood fill of the
  outside). So a closed surface counts its whole interior, and a hollow or open shell only its
  walls: the outside flows in through the opening. UV seams are welded first, so split vertices
  do not open the surface.
- `chamfer_l1`: the mean distance from surface samples of each mesh to the other's nearest
  sample, averaged over both directions (world units).
- `fscore_002` / `fscore_005`: F-score at τ = 0.02 / 0.05: the harmonic mean of precision (share
  of the result's samples within τ of the ground truth) and recall (the reverse).
- `normal_consistency`: mean |cos| between each sample's normal and its nearest neighbour's on the
  other surface, both ways.
- `extent_error`: per-axis |size − size_gt| of the axis-aligned bounding boxes (x, y, z).

Sampling is seeded, so a mesh against itself scores exactly 1 / 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import trimesh

VOLUME_RESOLUTION = 128  # grid cells per axis over [-1, 1]³ (the issue asks for at least 64)
SURFACE_SAMPLES = 30_000  # per mesh, for chamfer, F-score and normal consistency
FSCORE_THRESHOLDS = (0.02, 0.05)
GRID_BOUND = 1.0


@dataclass
class GeometryMetrics:
    volume_iou: float
    chamfer_l1: float
    fscore_002: float
    fscore_005: float
    normal_consistency: float
    extent_error: list[float]  # |size − size_gt| along x, y, z
    extent: list[float]  # the result's bounding-box size along x, y, z
    extent_gt: list[float]
    volume: float  # enclosed volume (grid cells inside × cell volume)
    volume_gt: float

    def to_dict(self) -> dict:
        return asdict(self)


def weld(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh with coincident vertices merged (UV seams, split normals) and no colours or UVs."""
    welded = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    welded.remove_unreferenced_vertices()
    return welded


def solid_occupancy(mesh: trimesh.Trimesh, resolution: int = VOLUME_RESOLUTION,
                    bound: float = GRID_BOUND) -> np.ndarray:
    """[R, R, R] float (x, y, z) occupancy of the cells of [-bound, bound]³: 1 for cells the
    surface encloses, 0.5 for cells it passes through (on average half inside: this halves the
    one-cell bias of counting them whole), 0 outside."""
    from scipy import ndimage

    walls = np.zeros((resolution,) * 3, dtype=bool)
    if len(mesh.faces) == 0:
        return walls.astype(np.float32)
    cell = 2.0 * bound / resolution
    # samples closer than a quarter cell apart mark every cell the surface passes through, so
    # the outside cannot leak through the wall between two samples
    count = int(np.ceil(mesh.area / (0.25 * cell) ** 2))
    points = np.concatenate([_even_surface_points(mesh, count), np.asarray(mesh.vertices)])
    index = np.floor((points + bound) / cell).astype(np.int64)
    keep = np.all((index >= 0) & (index < resolution), axis=1)
    index = index[keep]
    walls[index[:, 0], index[:, 1], index[:, 2]] = True
    # padding makes the border one connected outside, also where the object touches the box
    solid = ndimage.binary_fill_holes(np.pad(walls, 1))[1:-1, 1:-1, 1:-1]
    return np.where(walls, 0.5, solid.astype(np.float32)).astype(np.float32)


def _even_surface_points(mesh: trimesh.Trimesh, count: int) -> np.ndarray:
    """Stratified points: each face gets samples in proportion to its area (at least its centroid)."""
    tris = np.asarray(mesh.triangles)
    per_face = np.maximum(1, np.ceil(count * mesh.area_faces / max(mesh.area, 1e-12)).astype(np.int64))
    face = np.repeat(np.arange(len(tris)), per_face)
    rng = np.random.default_rng(0)
    u, v = rng.random(len(face)), rng.random(len(face))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tris[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def surface_samples(mesh: trimesh.Trimesh, count: int = SURFACE_SAMPLES, seed: int = 0):
    """(points [N, 3], unit normals [N, 3]) drawn area-uniformly with a fixed seed."""
    points, face = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals)[face]


def fscore(precision_distances: np.ndarray, recall_distances: np.ndarray, tau: float) -> float:
    precision = float((precision_distances < tau).mean())
    recall = float((recall_distances < tau).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def geometry_metrics(result: trimesh.Trimesh, truth: trimesh.Trimesh,
                     resolution: int = VOLUME_RESOLUTION, samples: int = SURFACE_SAMPLES) -> GeometryMetrics:
    """Compare a result mesh with the ground truth in the world frame (see the module notes).

    An empty result scores volume IoU 0, F-scores 0, normal consistency 0 and chamfer 1 (the
    scale of the object box), so a failed export never reads as a good one."""
    from scipy.spatial import cKDTree

    result, truth = weld(result), weld(truth)
    cell_volume = (2.0 * GRID_BOUND / resolution) ** 3
    occ_gt = solid_occupancy(truth, resolution)
    size_gt = truth.extents.tolist()
    if len(result.faces) == 0:
        return GeometryMetrics(0.0, 1.0, 0.0, 0.0, 0.0, [float(s) for s in size_gt], [0.0, 0.0, 0.0],
                               size_gt, 0.0, float(occ_gt.sum() * cell_volume))
    occ = solid_occupancy(result, resolution)
    iou = volume_iou(occ, occ_gt)

    points, normals = surface_samples(result, samples)
    points_gt, normals_gt = surface_samples(truth, samples)
    to_gt, nearest_gt = cKDTree(points_gt).query(points)
    to_result, nearest = cKDTree(points).query(points_gt)
    cos_a = np.abs((normals * normals_gt[nearest_gt]).sum(1))
    cos_b = np.abs((normals_gt * normals[nearest]).sum(1))
    size = result.extents.tolist()
    return GeometryMetrics(
        volume_iou=iou,
        chamfer_l1=float(0.5 * (to_gt.mean() + to_result.mean())),
        fscore_002=fscore(to_gt, to_result, FSCORE_THRESHOLDS[0]),
        fscore_005=fscore(to_gt, to_result, FSCORE_THRESHOLDS[1]),
        normal_consistency=float(0.5 * (cos_a.mean() + cos_b.mean())),
        extent_error=[abs(a - b) for a, b in zip(size, size_gt)],
        extent=size, extent_gt=size_gt,
        volume=float(occ.sum() * cell_volume), volume_gt=float(occ_gt.sum() * cell_volume))


def volume_iou(occ: np.ndarray, occ_gt: np.ndarray) -> float:
    """IoU of two soft occupancy grids (min over max, 1 when both are empty)."""
    union = np.maximum(occ, occ_gt).sum()
    return float(np.minimum(occ, occ_gt).sum() / union) if union else 1.0


def load_mesh(path) -> trimesh.Trimesh:
    """A mesh file (glb/obj/ply) as one Trimesh in its world frame (scene transforms applied)."""
    loaded = trimesh.load(str(path), force="mesh", process=False)
    return loaded if isinstance(loaded, trimesh.Trimesh) else trimesh.Trimesh()
