"""The Gaussian-splat representation: SH colours, initialisation, rendering, densification, exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.render.splat.ply import property_names, read_splats_ply, write_splats_ply
from dreamer.render.splat.sh import rgb_to_sh0, sh_basis, sh_to_colour
from dreamer.representations.gaussians import Gaussians, GaussiansConfig


def _camera(az=30.0, el=20.0, size=32, n=1):
    return from_spherical(torch.full((n,), az), torch.full((n,), el), torch.full((n,), 2.8), 42.5, size)


def _chair(**overrides) -> Gaussians:
    torch.manual_seed(0)
    config = dict(init="shape", init_shape="a red chair", num_gaussians=1500, init_opacity=0.6)
    return Gaussians(GaussiansConfig(**{**config, **overrides}))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_colours_equal_gsplats_reference(degree):
    from gsplat.cuda._torch_impl import _spherical_harmonics

    gen = torch.Generator().manual_seed(degree)
    dirs = torch.nn.functional.normalize(torch.randn(200, 3, generator=gen), dim=-1)
    coeffs = torch.randn(200, (degree + 1) ** 2, 3, generator=gen)
    expected = (_spherical_harmonics(degree, dirs, coeffs) + 0.5).clamp_min(0)
    assert torch.allclose(sh_to_colour(coeffs, dirs, degree), expected, atol=1e-5)
    assert sh_basis(degree, dirs).shape == (200, (degree + 1) ** 2)


def test_rgb_round_trips_through_the_degree_zero_coefficient():
    rgb = torch.rand(10, 3)
    dirs = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    assert torch.allclose(sh_to_colour(rgb_to_sh0(rgb)[:, None, :], dirs, 0), rgb, atol=1e-6)


def test_shape_initialisation_lies_on_the_object_in_its_colour():
    g = _chair()
    means = g.params["means"].detach()
    from dreamer.shapes import parse_prompt
    from dreamer.shapes.spec import sdf_and_colour

    sdf, _ = sdf_and_colour(parse_prompt("a red chair"), means)
    assert sdf.abs().max() < 0.05  # on the surface (marching-cubes mesh at 96³)
    colours = g.colours()
    assert colours[:, 0].mean() > 0.5 and colours[:, 1:].mean() < 0.3  # red
    assert g.num_gaussians == 1500 and torch.isfinite(g.params["scales"]).all()


def test_render_shapes_gradients_and_background():
    g = _chair()
    out = g.render(_camera(n=2), background=torch.tensor([0.0, 0.0, 1.0]))
    assert out.rgb.shape == (2, 32, 32, 3) and out.alpha.shape == (2, 32, 32, 1) and out.depth.shape == (2, 32, 32, 1)
    assert out.alpha[:, 16, 16].min() > 0.5 and out.alpha[:, 0, 0].max() < 1e-3  # object centre / empty corner
    assert torch.allclose(out.rgb[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # the background shows in the corner
    out.rgb.mean().backward()
    for name in ("means", "scales", "quats", "opacities", "sh0"):
        assert g.params[name].grad is not None and g.params[name].grad.abs().sum() > 0, name


def test_view_dependent_colour_changes_with_the_camera():
    g = _chair(sh_degree=1)
    with torch.no_grad():
        g.params["shN"][:, 0, :] = 1.0  # a strong y-dependent term
    low, high = g.render(_camera(el=-10.0)), g.render(_camera(el=50.0))
    assert (low.rgb - high.rgb).abs().max() > 0.1


def _trainer_like_optimizer(g: Gaussians) -> torch.optim.Adam:
    return torch.optim.Adam(g.parameter_groups(), lr=1e-3)


def _densify_once(g: Gaussians, opt, step: int) -> None:
    out = g.render(_camera(n=2))
    opt.zero_grad(set_to_none=True)
    (out.rgb - torch.tensor([0.0, 1.0, 0.0])).square().sum().mul(100).backward()  # large screen gradients
    opt.step()
    g.after_step(step, opt)


def test_densification_keeps_parameters_and_optimizer_state_consistent():
    g = _chair(refine_start=0, refine_every=1, grow_grad2d=1e-6, prune_opacity=0.5)
    opt = _trainer_like_optimizer(g)
    before = g.num_gaussians
    _densify_once(g, opt, step=1)
    after = g.num_gaussians
    assert after != before
    for group in opt.param_groups:
        (p,) = group["params"]
        assert p is g.params[group["name"]]  # the optimizer holds the module's current tensors
        assert p.shape[0] == after
        state = opt.state[p]
        if p.numel() == 0:  # shN at SH degree 0: [N, 0, 3], never stepped
            continue
        for key in ("exp_avg", "exp_avg_sq"):
            assert state[key].shape == p.shape, (group["name"], key)
    _densify_once(g, opt, step=2)  # and training goes on with the new tensors
    assert all(torch.isfinite(p).all() for p in g.params.values())


def test_growth_stops_at_the_cap():
    g = _chair(refine_start=0, refine_every=1, grow_grad2d=1e-9, prune_opacity=0.0, max_gaussians=1500)
    opt = _trainer_like_optimizer(g)
    _densify_once(g, opt, step=1)
    assert g.num_gaussians <= 1500


def test_checkpoint_of_a_densified_asset_loads_into_a_fresh_one():
    g = _chair(refine_start=0, refine_every=1, grow_grad2d=1e-6)
    opt = _trainer_like_optimizer(g)
    _densify_once(g, opt, step=1)
    state, opt_state = g.state_dict(), opt.state_dict()
    fresh = _chair(refine_start=0, refine_every=1, grow_grad2d=1e-6)
    fresh_opt = _trainer_like_optimizer(fresh)  # built before loading, as the trainer does
    fresh.load_state_dict(state)
    fresh_opt.load_state_dict(opt_state)
    assert fresh.num_gaussians == g.num_gaussians
    for name in g.params:
        assert torch.equal(fresh.params[name], g.params[name])
    torch.manual_seed(1)
    _densify_once(fresh, fresh_opt, step=3)  # the loaded optimizer steps the resized tensors


def test_splats_ply_round_trips_with_the_standard_property_names(tmp_path):
    plyfile = pytest.importorskip("plyfile")
    g = _chair(sh_degree=2)
    with torch.no_grad():
        g.params["shN"].normal_()
    arrays = g.splat_arrays()
    path = write_splats_ply(arrays, tmp_path / "splats.ply")
    back = read_splats_ply(path)
    for field in ("means", "sh", "opacity_logits", "log_scales", "quats"):
        assert np.allclose(getattr(back, field), getattr(arrays, field)), field
    vertex = plyfile.PlyData.read(str(path))["vertex"]
    names = [p.name for p in vertex.properties]
    assert names == property_names(9) and names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert np.allclose(vertex["f_rest_0"], arrays.sh[:, 1, 0]) and np.allclose(vertex["f_rest_8"], arrays.sh[:, 1, 1])
    assert np.allclose(vertex["opacity"], arrays.opacity_logits)
    # and a splats.ply initialises a new asset exactly
    loaded = Gaussians(GaussiansConfig(init="points", init_points=str(path), sh_degree=2, num_gaussians=1))
    assert torch.allclose(loaded.params["means"], g.params["means"]) and torch.allclose(loaded.params["shN"], g.params["shN"])


def test_not_a_splat_ply_is_a_user_error(tmp_path):
    bad = tmp_path / "x.ply"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not a PLY"):
        read_splats_ply(bad)


def test_mesh_and_colour_of_the_splats():
    g = _chair()
    mesh = g.to_mesh(64)
    assert len(mesh.faces) > 100
    lo, hi = mesh.bounds
    from dreamer.shapes import parse_prompt
    from dreamer.shapes.mesh import spec_mesh

    truth = spec_mesh(parse_prompt("a red chair"), 64).bounds
    assert np.abs(lo - truth[0]).max() < 0.15 and np.abs(hi - truth[1]).max() < 0.15
    rgb = np.asarray(mesh.visual.vertex_colors)[:, :3].mean(0) / 255
    assert rgb[0] > 0.5 and rgb[1:].max() < 0.3


def test_means_lr_falls_log_linearly_to_its_final_value_and_stays():
    g = _chair(densify=False, lr_means=1e-3, lr_means_final=1e-5, lr_means_decay_steps=10)
    opt = _trainer_like_optimizer(g)
    means = next(gr for gr in opt.param_groups if gr["name"] == "means")
    scales = next(gr for gr in opt.param_groups if gr["name"] == "scales")
    seen = []
    for step in range(14):  # after_step(step) sets the lr of step + 1
        g.after_step(step, opt)
        seen.append(means["lr"])
    assert seen[4] == pytest.approx(1e-4)  # halfway (step 5) in log space
    assert seen[9] == pytest.approx(1e-5) and seen[13] == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(seen[:9], seen[1:10]))
    assert scales["lr"] == pytest.approx(g.config.lr_scales)  # only the means follow the schedule
    constant = _chair(densify=False)
    opt = _trainer_like_optimizer(constant)
    constant.after_step(300, opt)
    assert next(gr for gr in opt.param_groups if gr["name"] == "means")["lr"] == pytest.approx(constant.config.lr_means)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="init_shape"):
        GaussiansConfig(init="shape")
    with pytest.raises(UserError, match="sh_degree"):
        GaussiansConfig(sh_degree=4)
    with pytest.raises(UserError, match="lr_means_final"):
        GaussiansConfig(lr_means_final=-1.0)
    with pytest.raises(UserError, match="does not exist"):
        Gaussians(GaussiansConfig(init="points", init_points="/nonexistent.ply"))


def test_generate_with_gaussians_writes_splats_and_a_valid_glb(tmp_path, tiny_run):
    from dreamer.cli import main

    out = tmp_path / "run"
    assert main(["generate", "a red cube", "--representation", "gaussians", "--steps", "4", "--quiet",
                 "--out", str(out), *tiny_run, "representation.num_gaussians=512",
                 "representation.init=shape", "representation.init_shape=a red cube"]) == 0
    assert (out / "splats.ply").is_file() and (out / "model.glb").is_file()
    assert len(read_splats_ply(out / "splats.ply")) > 0
    from gltf_validator import assert_valid_gltf

    assert_valid_gltf(out / "model.glb")
    # resume from the checkpoint continues with the same Gaussians
    assert main(["generate", "--resume", "--out", str(out), "--steps", "6", "--quiet"]) == 0


def _leg_of_dust(lowpass) -> Gaussians:
    """A vertical rod 0.04 wide of tiny (scale 0.004), faint (opacity 0.15) splats, as a 64 px run learns a chair
    leg, above a solid block of large opaque splats."""
    gen = torch.Generator().manual_seed(0)
    rod = torch.rand(1500, 3, generator=gen) * torch.tensor([0.04, 0.8, 0.04]) - torch.tensor([0.02, 0.6, 0.02])
    block = torch.rand(600, 3, generator=gen) * 0.4 - torch.tensor([0.2, -0.2, 0.2])
    g = Gaussians(GaussiansConfig(num_gaussians=2100, max_gaussians=2100, mesh_lowpass=lowpass))
    with torch.no_grad():
        g.params["means"].copy_(torch.cat([rod, block]))
        g.params["scales"].copy_(torch.log(torch.cat([torch.full((1500, 3), 0.004), torch.full((600, 3), 0.04)])))
        g.params["quats"].copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(2100, 4))
        opacity = torch.cat([torch.full((1500,), 0.15), torch.full((600,), 0.9)])
        g.params["opacities"].copy_(torch.logit(opacity))
    return g


def test_the_mesh_keeps_thin_parts_the_rasterizer_draws_solid():
    from dreamer.representations.gaussian_density import render_lowpass

    lowpass = render_lowpass(2.8, 42.5, 64)
    assert lowpass == pytest.approx(0.3 ** 0.5 * 2 * 2.8 * np.tan(np.radians(21.25)) / 64)
    assert 0.018 < lowpass < 0.019
    # the rod renders solid at 64 px (the rasterizer's low-pass spreads each splat over a pixel)
    g = _leg_of_dust(lowpass)
    with torch.no_grad():
        alpha = g.render(from_spherical(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([2.8]), 42.5, 64)).alpha
    column = alpha[0, 30:46, 30:34, 0]  # rows of the rod (y from 0.1 down to -0.45), the columns around x = 0
    assert column.max(dim=1).values.min() > 0.5
    drawn = g.to_mesh(128, fill_unseen=False)
    dust = _leg_of_dust(0.0).to_mesh(128, fill_unseen=False)
    assert drawn.bounds[0, 1] < -0.5  # the rod reaches down to about -0.6
    assert dust.bounds[0, 1] > -0.3  # without the low-pass only the block is meshed
    with pytest.raises(UserError, match="mesh_lowpass"):
        GaussiansConfig(mesh_lowpass=-1.0)


def test_a_run_fills_in_its_renders_low_pass():
    from dreamer.representations.gaussian_density import render_lowpass
    from dreamer.run_config.loading import load_run_config
    from dreamer.trainer.build import build_representation

    config = load_run_config("4d-oracle", {"prompt": "a red cube bouncing"})
    assert config.representation.config.mesh_lowpass is None
    build_representation(config, torch.device("cpu"))
    assert config.representation.config.mesh_lowpass == pytest.approx(render_lowpass(2.8, 42.5, 64))
