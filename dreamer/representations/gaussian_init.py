"""Initial Gaussians: uniform in a ball, on a shape-library object's surface, or from a PLY.

Scales start at the mean distance to the 3 nearest neighbours (as 3DGS does) unless given,
rotations at identity, every opacity at `init_opacity`. Random draws use torch's global RNG,
which the trainer seeds with the run's seed before building the representation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamer.errors import UserError
from dreamer.render.splat.sh import num_coefficients, rgb_to_sh0


@dataclass
class InitialGaussians:
    means: torch.Tensor  # [N, 3]
    log_scales: torch.Tensor  # [N, 3]
    quats: torch.Tensor  # [N, 4] w x y z
    opacity_logits: torch.Tensor  # [N]
    sh: torch.Tensor  # [N, K, 3]


def initial_gaussians(config) -> InitialGaussians:
    """From a `GaussiansConfig`."""
    k = num_coefficients(config.sh_degree)
    if config.init == "points" and _is_splat_ply(config.init_points):
        return _from_splats(config.init_points, k)
    if config.init == "ball":
        means, rgb = _ball(config.num_gaussians, config.init_radius)
    elif config.init == "shape":
        means, rgb = _on_shape(config.init_shape, config.num_gaussians)
    else:
        means, rgb = _point_cloud(config.init_points)
    n = means.shape[0]
    scale = torch.full((n,), float(config.init_scale)) if config.init_scale > 0 else nearest_neighbour_scale(means)
    sh = torch.zeros(n, k, 3)
    sh[:, 0, :] = rgb_to_sh0(rgb)
    opacity = torch.full((n,), float(config.init_opacity))
    return InitialGaussians(means=means, log_scales=scale.log()[:, None].repeat(1, 3),
                            quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
                            opacity_logits=torch.log(opacity / (1 - opacity)), sh=sh)


def nearest_neighbour_scale(means: torch.Tensor, k: int = 3) -> torch.Tensor:
    """[N] mean distance of each point to its k nearest neighbours (at least 1e-4)."""
    from scipy.spatial import cKDTree

    pts = means.detach().cpu().numpy()
    if len(pts) <= 1:
        return torch.full((len(pts),), 0.01)
    dist, _ = cKDTree(pts).query(pts, k=min(k, len(pts) - 1) + 1)
    return torch.from_numpy(dist[:, 1:].mean(axis=1)).float().clamp_min(1e-4)


def _ball(n: int, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    direction = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    means = direction * radius * torch.rand(n, 1) ** (1 / 3)  # uniform in volume
    rgb = (0.5 + 0.1 * torch.randn(n, 3)).clamp(0, 1)  # grey with a little noise
    return means, rgb


def _on_shape(prompt: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from dreamer.shapes import parse_prompt
    from dreamer.shapes.mesh import spec_mesh
    from dreamer.shapes.spec import sdf_and_colour

    spec = parse_prompt(prompt)
    mesh = spec_mesh(spec, 96)
    face_areas = torch.tensor(np.asarray(mesh.area_faces), dtype=torch.float64)
    faces = torch.multinomial(face_areas, n, replacement=True)
    tri = torch.as_tensor(mesh.vertices[mesh.faces], dtype=torch.float32)[faces]  # [n, 3, 3]
    u, v = torch.rand(n, 1), torch.rand(n, 1)
    flip = (u + v) > 1  # fold the unit square onto the triangle
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    means = tri[:, 0] + u * (tri[:, 1] - tri[:, 0]) + v * (tri[:, 2] - tri[:, 0])
    with torch.no_grad():
        _, rgb = sdf_and_colour(spec, means)
    return means, rgb.float()


def _is_splat_ply(path: str) -> bool:
    head = Path(path).read_bytes()[:4096] if Path(path).is_file() else b""
    return b"property float f_dc_0" in head


def _point_cloud(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    import trimesh

    if not Path(path).is_file():
        raise UserError(f"gaussians.init_points: {path} does not exist")
    cloud = trimesh.load(path, process=False)
    vertices = np.asarray(getattr(cloud, "vertices", np.zeros((0, 3))), dtype=np.float32)
    if len(vertices) == 0:
        raise UserError(f"gaussians.init_points: {path} holds no points")
    colours = getattr(getattr(cloud, "visual", None), "vertex_colors", None)
    if colours is None or len(colours) != len(vertices):
        colours = np.full((len(vertices), 4), 128, dtype=np.uint8)
    rgb = torch.from_numpy(np.asarray(colours)[:, :3].astype(np.float32) / 255.0)
    return torch.from_numpy(vertices), rgb


def _from_splats(path: str, k: int) -> InitialGaussians:
    from dreamer.render.splat.ply import read_splats_ply

    s = read_splats_ply(path)
    sh = torch.zeros(len(s), k, 3)
    keep = min(k, s.sh.shape[1])
    sh[:, :keep] = torch.from_numpy(s.sh[:, :keep])
    return InitialGaussians(means=torch.from_numpy(s.means), log_scales=torch.from_numpy(s.log_scales),
                            quats=torch.from_numpy(s.quats), opacity_logits=torch.from_numpy(s.opacity_logits), sh=sh)
