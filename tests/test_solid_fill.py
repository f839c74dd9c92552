"""Filling space no camera sees: open-bottomed shells become solids, visible concavities stay empty."""

import pytest
import torch

from dreamer.render.solid import OPAQUE_DEPTH, fill_unseen, seen_cells, view_directions
from dreamer.render.volume import density_to_mesh
from dreamer.shapes import parse_prompt
from dreamer.shapes.mesh import sdf_grid

pytestmark = pytest.mark.slow(seconds=15)  # a mid-sized file: scheduled early (tests/conftest.py)

R = 64


def _solid(prompt, resolution=R):
    return torch.from_numpy(sdf_grid(parse_prompt(prompt), resolution)) < 0


def _iou(a, b):
    return float((a & b).sum() / (a | b).sum())


def test_directions_are_unit_and_include_the_zenith_and_below_the_horizon():
    d = view_directions()
    assert torch.allclose(d.norm(dim=1), torch.ones(len(d)), atol=1e-6)
    assert d[:, 1].max() == pytest.approx(1.0) and d[:, 1].min() < -0.15


def test_an_open_bottomed_shell_is_filled():
    cube = _solid("a red cube")
    y = torch.linspace(-1, 1, R)[None, :, None].expand(R, R, R)
    walls = cube & ~(torch.from_numpy(sdf_grid(parse_prompt("a red cube"), R)) < -0.08)
    bucket = walls & (y > -0.3)  # an upturned bucket: no floor
    assert _iou(bucket, cube) < 0.5
    # cameras 10° below the horizon still see a little way up into the opening
    assert _iou(fill_unseen(bucket), cube) > 0.8
    assert not seen_cells(bucket.float() * OPAQUE_DEPTH)[R // 2, R // 2, R // 2]  # the middle is seen from nowhere


@pytest.mark.parametrize("prompt", ["a red mug", "a red table", "a red chair", "a red torus", "a red sphere"])
def test_solid_library_objects_keep_their_visible_concavities(prompt):
    solid = _solid(prompt)
    assert _iou(fill_unseen(solid), solid) > 0.97


@pytest.mark.parametrize("prompt", ["a red mug", "a red table", "a red lamp"])
def test_finer_grids_judged_coarser_keep_their_concavities_too(prompt):
    solid = _solid(prompt, 128)  # judged on a 64³ grid, filled at 128³
    assert _iou(fill_unseen(solid), solid) > 0.97


def test_the_exported_mesh_of_a_shell_density_is_closed_and_solid():
    walls = _solid("a red cube") & ~(torch.from_numpy(sdf_grid(parse_prompt("a red cube"), R)) < -0.08)
    y = torch.linspace(-1, 1, R)[None, :, None].expand(R, R, R)
    density = ((walls & (y > -0.3)).float() * 50.0)
    import trimesh

    open_verts, open_faces = density_to_mesh(density, 1.0, fill_unseen=False)
    solid_verts, solid_faces = density_to_mesh(density, 1.0)
    hollow = trimesh.Trimesh(open_verts, open_faces)
    solid = trimesh.Trimesh(solid_verts, solid_faces)
    assert solid.is_watertight and solid.volume > 0.7 * 0.7 ** 3 > 2 * abs(hollow.volume)




def _pierced_shell(tunnel_width: int):
    """A cube shell (walls ~5 cells thick) around a cavity, pierced from the top by a square tunnel;
    also the tunnel's column (tunnel + the cavity cells straight under it) as a mask."""
    sdf = torch.from_numpy(sdf_grid(parse_prompt("a red cube"), R))
    shell = (sdf < 0) & ~(sdf < -0.15)
    column = torch.zeros_like(shell)
    c, h = R // 2, tunnel_width // 2
    column[c - h:c - h + tunnel_width, :, c - h:c - h + tunnel_width] = True
    column &= sdf < 0
    return shell & ~(column & (torch.arange(R)[None, :, None] >= c)), column


def test_a_cavity_seen_only_down_a_narrow_tunnel_is_filled_and_a_wide_opening_is_not():
    shell, column = _pierced_shell(2)
    open_tunnel = fill_unseen(shell, closing=0)
    assert float(open_tunnel[column].float().mean()) < 0.5  # seen from the zenith down the tunnel: left empty
    plugged = fill_unseen(shell)
    assert bool(plugged[column].all())  # the closing plugs the tunnel: the column is seen from nowhere, filled
    wide, column = _pierced_shell(16)
    assert float(fill_unseen(wide)[column].float().mean()) < 0.5  # a real opening (a mug's mouth) stays open
