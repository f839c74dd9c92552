"""Starting SDFs for the tetrahedral grid: a sphere, a shape-library object, or a mesh (a coarse result)."""

from __future__ import annotations

import numpy as np
import torch


def sphere_sdf(points: torch.Tensor, radius: float) -> torch.Tensor:
    return points.norm(dim=-1) - radius


def shape_sdf(points: torch.Tensor, prompt: str) -> torch.Tensor:
    """The analytic SDF of a shape-library object ("a red chair")."""
    from dreamer.shapes import parse_prompt
    from dreamer.shapes.spec import sdf_and_colour

    sdf, _ = sdf_and_colour(parse_prompt(prompt), points)
    return sdf


def mesh_sdf(points: torch.Tensor, mesh, samples: int = 200_000, seed: int = 0) -> torch.Tensor:
    """Signed distance to a closed, outward-wound triangle mesh (trimesh), positive outside.

    The distance is to the nearest of `samples` area-uniform surface points; the sign is that of
    the mean of (p − q)·n over the 8 nearest points q with face normals n near the surface, and
    from a flood fill of the outside elsewhere. Exact enough to start from: the grid
    cell is much larger than the sample spacing, and only the sign near the surface matters to
    the extracted mesh.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    faces = np.asarray(mesh.faces)
    if len(faces) == 0:
        return torch.ones(len(points), dtype=points.dtype, device=points.device)
    area = np.asarray(mesh.area_faces, dtype=np.float64)
    face = rng.choice(len(faces), size=samples, p=area / area.sum())
    r1, r2 = rng.random(samples), rng.random(samples)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)  # uniform barycentrics
    tri = np.asarray(mesh.vertices)[faces[face]]  # [S, 3, 3]
    surface = (w[:, :, None] * tri).sum(1)
    normals = np.asarray(mesh.face_normals)[face]
    query = points.detach().cpu().double().numpy()
    distances, nearest = cKDTree(surface).query(query, k=8)  # [P, 8]
    distance = distances[:, 0]
    # near the surface: the mean over the 8 nearest samples (beside an edge or corner the single
    # nearest sample may lie on a face whose plane passes through the point: dot ≈ 0, either sign)
    side = np.sign(((query[:, None] - surface[nearest]) * normals[nearest]).sum(-1).mean(-1))
    side[side == 0] = 1.0
    # away from it: flood fill, which a rough or slightly open surface (a coarse result) cannot fool
    state = _flood_fill_side(query, surface)
    side = np.where(state == 0, side, state)
    return torch.as_tensor(distance * side, dtype=points.dtype, device=points.device)


def _flood_fill_side(query: np.ndarray, surface: np.ndarray, resolution: int = 128) -> np.ndarray:
    """[P] −1 inside, +1 outside, 0 on the surface's shell (voxels the surface passes through,
    dilated by one to close pinholes between samples), from a flood fill of the outside."""
    from scipy import ndimage

    low = np.minimum(surface.min(0), query.min(0)) - 1e-6
    high = np.maximum(surface.max(0), query.max(0)) + 1e-6
    scale = resolution / (high - low)

    def voxel(p: np.ndarray) -> np.ndarray:
        return np.clip(((p - low) * scale).astype(np.int64), 0, resolution - 1)

    shell = np.zeros((resolution,) * 3, dtype=bool)
    shell[tuple(voxel(surface).T)] = True
    shell = ndimage.binary_dilation(shell, iterations=1)
    interior = ndimage.binary_fill_holes(shell) & ~shell
    v = tuple(voxel(query).T)
    return np.where(shell[v], 0, np.where(interior[v], -1, 1))


def load_mesh(path: str):
    """A triangle mesh from a file (one mesh even for a scene file); a one-line error if unusable."""
    from pathlib import Path

    import trimesh

    from dreamer.errors import UserError

    if not Path(path).is_file():
        raise UserError(f"mesh file '{path}' does not exist")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file for the user
        raise UserError(f"cannot read mesh file '{path}' ({type(e).__name__})") from None
    if len(getattr(mesh, "faces", [])) == 0:
        raise UserError(f"mesh file '{path}' has no triangles (an empty first stage?)")
    return mesh


def vertex_colour_fn(mesh):
    """points [N, 3] -> RGB [N, 3] in [0, 1]: the colour of the nearest mesh vertex (grey if it has none)."""
    from scipy.spatial import cKDTree

    vertices = np.asarray(mesh.vertices)
    visual = mesh.visual
    if getattr(visual, "kind", None) == "texture":  # a textured mesh: sample the texture at the vertices
        visual = visual.to_color()
    if getattr(visual, "kind", None) in ("vertex", "face", "texture"):
        colours = np.asarray(visual.vertex_colors)[:, :3] / 255.0
    else:  # no colours: a neutral start
        colours = np.full((len(vertices), 3), 0.5)
    tree = cKDTree(vertices)

    def colour(points: torch.Tensor) -> torch.Tensor:
        _, nearest = tree.query(points.detach().cpu().numpy())
        return torch.as_tensor(colours[nearest], dtype=points.dtype, device=points.device)

    return colour
