"""The DMTet mesh representation: the tetrahedral grid, marching tetrahedra, rendering, gradients,
initialisation from a mesh, and the two-stage (coarse then mesh refine) run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.representations.mesh import MeshConfig, MeshRepresentation
from dreamer.representations.tetra.grid import kuhn_tets, tet_grid
from dreamer.representations.tetra.marching import marching_tetrahedra


def _cameras(n: int = 4, size: int = 32):
    return from_spherical(torch.linspace(0, 270, n), torch.full((n,), 20.0), torch.full((n,), 2.8), 42.5, size)


def _tet_volumes(vertices: torch.Tensor, tets: torch.Tensor) -> torch.Tensor:
    p = vertices[tets].double()
    return torch.linalg.det(torch.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]], 1)) / 6


def test_kuhn_split_fills_the_cube_with_six_equal_tetrahedra():
    corners = torch.tensor([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=torch.float64)
    volumes = _tet_volumes(corners, kuhn_tets()).abs()
    torch.testing.assert_close(volumes, torch.full((6,), 1 / 6, dtype=torch.float64))


def test_grid_tiles_the_box_without_gaps_and_shares_edges():
    grid = tet_grid(4, bound=1.0)
    assert grid.vertices.shape == (125, 3) and grid.tets.shape == (4 ** 3 * 6, 4)
    assert float(_tet_volumes(grid.vertices, grid.tets).abs().sum()) == pytest.approx(8.0)
    ends = grid.edges[grid.tet_edges]  # [T, 6, 2]: each tet's edges, looked up, are its own vertex pairs
    local = torch.tensor([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    expected = torch.sort(grid.tets[:, local], dim=-1).values
    assert torch.equal(ends, expected)
    assert len(grid.edges) < grid.tet_edges.numel()  # shared between neighbouring tetrahedra


def test_marching_tetrahedra_of_a_sphere_is_closed_outward_and_close_to_it():
    import trimesh

    grid = tet_grid(24)
    sdf = grid.vertices.norm(dim=-1) - 0.6
    vertices, faces, _ = marching_tetrahedra(grid.vertices, sdf, grid)
    mesh = trimesh.Trimesh(vertices.numpy(), faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.6 ** 3, rel=0.03)  # positive: outward winding
    assert float((vertices.norm(dim=-1) - 0.6).abs().max()) < grid.cell / 2


def test_surface_vertices_follow_the_sdf_by_linear_interpolation():
    """d vertex / d sdf by finite differences on one cut edge (float64)."""
    grid = tet_grid(4)
    sdf = (grid.vertices.double().norm(dim=-1) - 0.7).requires_grad_(True)
    vertices, faces, cut = marching_tetrahedra(grid.vertices.double(), sdf, grid)
    weights = torch.randn(vertices.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (vertices * weights).sum().backward()
    a = int(cut[0, 0])
    h = 1e-6
    values = []
    for sign in (1, -1):
        s = sdf.detach().clone()
        s[a] += sign * h
        v, f, c = marching_tetrahedra(grid.vertices.double(), s, grid)
        assert torch.equal(c, cut)  # the same edges are cut
        values.append(float((v * weights).sum()))
    assert sdf.grad[a].item() == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-5)


def test_shape_initialisation_renders_the_library_object():
    from dreamer.shapes import parse_prompt, render_spec

    mesh = MeshRepresentation(MeshConfig(init="shape", init_shape="a red cube", init_colour_steps=150))
    mesh.eval()
    cams = _cameras()
    out = mesh.render(cams, background=torch.ones(3))
    truth = render_spec(parse_prompt("a red cube"), cams, background=(1.0, 1.0, 1.0))
    ours, gt = out.alpha[..., 0] > 0.5, truth.alpha[..., 0] > 0.5
    assert (ours & gt).sum() / (ours | gt).sum() > 0.9
    centre = out.rgb[:, 12:20, 12:20].reshape(-1, 3).mean(0)
    assert centre[0] > 0.5 and centre[0] > centre[1] + 0.3 and centre[0] > centre[2] + 0.3  # red, shaded


def test_rendering_gives_gradients_to_sdf_offsets_and_colour():
    mesh = MeshRepresentation(MeshConfig(grid_resolution=12, init_radius=0.5))
    out = mesh.render(_cameras(2, 24))
    assert out.rgb.shape == (2, 24, 24, 3) and out.alpha.shape == (2, 24, 24, 1)
    regs = mesh.regularization(out)
    assert set(regs) == {"sdf_sign", "laplacian"} and all(torch.isfinite(v) for v in regs.values())
    (out.rgb.mean() + out.alpha.mean() + regs["laplacian"]).backward()
    for p in (mesh.sdf, mesh.deformation, *mesh.mlp.parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_optimising_the_silhouette_grows_a_small_sphere_towards_a_larger_one():
    """The antialiased outline moves the surface: fit the alpha of a radius-0.6 sphere from 0.35."""
    target = MeshRepresentation(MeshConfig(grid_resolution=16, init_radius=0.6)).render(_cameras(4, 24)).alpha.detach()
    torch.manual_seed(0)
    mesh = MeshRepresentation(MeshConfig(grid_resolution=16, init_radius=0.35, lr_sdf=3e-2, lr_deform=3e-2))
    opt = torch.optim.Adam(mesh.parameter_groups())
    cams = _cameras(4, 24)

    def iou() -> float:
        with torch.no_grad():
            a = mesh.render(cams).alpha > 0.5
        b = target > 0.5
        return float((a & b).sum() / (a | b).sum())

    before = iou()
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.mse_loss(mesh.render(cams).alpha, target).backward()
        opt.step()
    after = iou()
    assert before < 0.5 and after > 0.85, (before, after)


def test_initialisation_from_a_coloured_mesh_file(tmp_path):
    import trimesh

    box = trimesh.creation.box(extents=(0.8, 0.6, 0.8))
    box.visual.vertex_colors = np.tile([20, 200, 40, 255], (len(box.vertices), 1))
    path = tmp_path / "box.ply"
    box.export(path)
    mesh = MeshRepresentation(MeshConfig(grid_resolution=20, init="mesh", init_mesh=str(path), init_colour_steps=100))
    surface = mesh.to_mesh()
    extent = surface.bounds[1] - surface.bounds[0]
    np.testing.assert_allclose(extent, [0.8, 0.6, 0.8], atol=2 * mesh.cell)
    colour = mesh.colour_at(torch.tensor([[0.4, 0.0, 0.0], [0.0, 0.3, 0.0]])).detach()
    assert (colour[:, 1] > 0.6).all() and (colour[:, 0] < 0.3).all()  # green


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="init_shape"):
        MeshConfig(init="shape")
    with pytest.raises(UserError, match="init_mesh"):
        MeshConfig(init="mesh")
    with pytest.raises(UserError, match="does not exist"):
        MeshRepresentation(MeshConfig(init="mesh", init_mesh=str(tmp_path / "missing.ply")))
    with pytest.raises(UserError, match="grid_resolution"):
        MeshConfig(grid_resolution=2)


def test_two_stage_run_refines_a_mesh_and_exports_it(tmp_path, tiny_run):
    import dreamer
    from gltf_validator import assert_valid_gltf

    out = tmp_path / "two-stage"
    common = dict(trainer__progress=False, export__video=False)
    dotted = [*tiny_run, "refine.steps=3", "refine.representation.grid_resolution=16",
              "refine.representation.init_colour_steps=20", "refine.regularizers.laplacian=1.0"]
    result = dreamer.generate("a red cube", out=out, steps=4, dotted=dotted, **common)
    assert result.metrics["steps"] == 4 and result.metrics["refine_steps"] == 3
    assert 0.0 <= result.metrics["eval"]["volume_iou"] <= 1.0  # of the refined mesh that was exported
    refine = out / "refine"
    assert (refine / "coarse.ply").is_file() and (refine / "checkpoints" / "last.pt").is_file()
    state = torch.load(refine / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 3 and "sdf" in state["representation"]
    assert_valid_gltf(out / "model.glb")
    assert result.metrics["eval"]["iou"] > 0.5
    # `dreamer export` re-exports the refined mesh, not the first stage
    from dreamer.trainer.outputs import load_run

    config, representation, step = load_run(out)
    assert type(representation).__name__ == "MeshRepresentation" and step == 3
    # resuming a finished two-stage run to more refine steps continues the second stage only
    more = dreamer.generate(out=out, resume=True, refine__steps=5, **common)
    assert more.metrics["refine_steps"] == 5
    assert torch.load(refine / "checkpoints" / "last.pt", weights_only=True)["step"] == 5
    # overwriting the run rebuilds the surface from the new first stage (it once kept the old one)
    coarse = (refine / "coarse.ply").read_bytes()
    dreamer.generate("a red cube", out=out, steps=4, overwrite=True, seed=7, dotted=dotted, **common)
    assert (refine / "coarse.ply").read_bytes() != coarse


def test_refine_section_is_validated_before_any_work():
    from dreamer.run_config import load_run_config

    with pytest.raises(UserError, match="grid_resolutoin"):
        load_run_config("default", {"prompt": "a red cube", "refine.steps": 2,
                                    "refine.representation": {"name": "mesh", "grid_resolutoin": 8}}).validate()
