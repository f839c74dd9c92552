"""4D Gaussians: the HexPlane field and similarity track (identity at first, looping time), per-time
rendering, stages, regularisers, checkpoints and the registry entry."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from dreamer import registry
from dreamer.cameras import Camera, from_spherical
from dreamer.errors import UserError
from dreamer.representations.base import Animated
from dreamer.representations.gaussians import Gaussians, GaussiansConfig
from dreamer.representations.gaussians4d import Gaussians4D, Gaussians4DConfig, Motion4DRegularizers, periodic_lerp
from dreamer.representations.hexplane import HexPlaneField

WHITE = torch.ones(3)
SMALL = dict(num_gaussians=400, init_radius=0.4, init_opacity=0.5, densify=False, backend="torch",
             plane_resolution=8, time_resolution=6, feature_dim=4, hidden=16, track_keyframes=4)


def _g4(**overrides) -> Gaussians4D:
    torch.manual_seed(0)
    return Gaussians4D(Gaussians4DConfig(**{**SMALL, **overrides}))


def _cameras(times, size: int = 24) -> Camera:
    n = len(times)
    cams = from_spherical(torch.linspace(0.0, 270.0, n), 15.0, 2.8, 40.0, size)
    return cams.with_time(torch.tensor(times, dtype=torch.float32))


@torch.no_grad()
def _perturb(g: Gaussians4D, seed: int = 1, track: bool = True) -> None:
    """A moving field: random heads and rough planes (and a random track)."""
    gen = torch.Generator().manual_seed(seed)
    f = g.deformation
    for head in (f.head_dx, f.head_dq, f.head_ds):
        head.weight.copy_(0.05 * torch.randn(head.weight.shape, generator=gen))
    f.spatial.add_(0.3 * torch.randn(f.spatial.shape, generator=gen))
    f.temporal.add_(0.3 * torch.randn(f.temporal.shape, generator=gen))
    if track and g.track is not None:
        for p in g.track.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def test_a_fresh_field_is_exactly_the_identity():
    g = _g4()
    assert isinstance(g, Animated) and g.is_dynamic and g.stage == "motion"
    static = Gaussians(GaussiansConfig(**{k: v for k, v in SMALL.items() if k in
                                          {f.name for f in dataclasses.fields(GaussiansConfig)}}))
    with torch.no_grad():
        for name in g.params:
            static.params[name].copy_(g.params[name])
        cams = _cameras([0.0, 0.37, 0.81])
        moving, still = g.render(cams, WHITE), static.render(cams, WHITE)
    torch.testing.assert_close(moving.rgb, still.rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(moving.alpha, still.alpha, rtol=0, atol=1e-6)
    torch.testing.assert_close(moving.depth, still.depth, rtol=0, atol=1e-5)
    points = torch.rand(50, 3) * 2 - 1
    for t in (0.0, 0.37, 0.99):
        assert torch.equal(g.deform_points(points, t), points)
    arrays, canonical = g.splat_arrays_at(0.6), g.splat_arrays()
    for name in ("means", "quats", "log_scales"):
        assert np.array_equal(getattr(arrays, name), getattr(canonical, name)), name
    R, c, s = g.track_pose(torch.tensor([0.2, 0.7]))
    assert torch.equal(R, torch.eye(3).expand(2, 3, 3)) and torch.equal(c, torch.zeros(2, 3)) and torch.equal(s, torch.ones(2))


def test_time_loops_in_the_field_and_the_track():
    g = _g4()
    _perturb(g)
    points = torch.rand(200, 3) * 1.6 - 0.8
    start, end, near_end = (g.deform_points(points, t) for t in (0.0, 1 - 1e-6, 0.999))
    halfway = g.deform_points(points, 0.5)
    assert (start - end).abs().max() < 1e-4  # time 1 ≡ time 0
    assert (start - near_end).abs().max() < 0.02 * (start - halfway).abs().max()  # continuous across the seam
    assert (start - halfway).abs().max() > 1e-2  # and it does move
    field = HexPlaneField(8, 6, 4, 16)
    with torch.no_grad():
        field.temporal.normal_()
    f0, f1 = field.features(points, 0.0), field.features(points, 1 - 1e-6)
    torch.testing.assert_close(f0, f1, rtol=0, atol=1e-4)
    assert torch.equal(field.features(points, 1.25), field.features(points, 0.25))


def test_periodic_keyframe_interpolation_wraps():
    keys = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    got = periodic_lerp(keys, torch.tensor([0.0, 0.125, 0.5, 0.875, 1.0, 0.999999]))[:, 0]
    torch.testing.assert_close(got, torch.tensor([0.0, 0.5, 2.0, 1.5, 0.0, 0.0]), atol=1e-4, rtol=0)


def _grads(g: Gaussians4D) -> dict[str, list]:
    return {group["name"]: [p.grad for p in group["params"]] for group in g.parameter_groups()}


def test_gradients_reach_the_deformation_in_stage_motion_and_nothing_in_stage_static():
    g = _g4()
    names = [group["name"] for group in g.parameter_groups()]
    assert names[-3:] == ["deformation_planes", "deformation_mlp", "deformation_track"]
    weights = torch.rand(3, 24, 24, 3, generator=torch.Generator().manual_seed(0))
    (g.render(_cameras([0.1, 0.4, 0.7]), WHITE).rgb * weights).sum().backward()
    grads = _grads(g)
    f = g.deformation
    assert all(p.grad.abs().sum() > 0 for p in (f.head_dx.weight, f.head_dq.weight, f.head_ds.weight))
    assert all(gr.abs().sum() > 0 for gr in grads["deformation_track"])
    assert f.spatial.grad.abs().sum() == 0  # the zero heads stop it at the very start
    g.zero_grad(set_to_none=True)
    _perturb(g, track=False)
    (g.render(_cameras([0.1, 0.4, 0.7]), WHITE).rgb * weights).sum().backward()
    grads = _grads(g)
    for name in ("deformation_planes", "deformation_mlp", "deformation_track", "means", "opacities"):
        assert all(gr is not None and torch.isfinite(gr).all() and gr.abs().sum() > 0 for gr in grads[name]), name
    g.zero_grad(set_to_none=True)
    g.set_stage("static")
    out = g.render(_cameras([0.1, 0.4, 0.7]), WHITE)
    (out.rgb * weights).sum().backward()
    grads = _grads(g)
    for name in ("deformation_planes", "deformation_mlp", "deformation_track"):
        assert all(gr is None for gr in grads[name]), name
    assert grads["means"][0].abs().sum() > 0
    static_frames = out.rgb.detach()
    assert torch.allclose(static_frames[0], g.render(_cameras([0.1, 0.4, 0.7]), WHITE).rgb[0].detach())
    with pytest.raises(UserError, match="stage 'dance'"):
        g.set_stage("dance")


def test_static_stage_renders_the_canonical_asset_at_every_time():
    g = _g4()
    _perturb(g)
    cams = _cameras([0.0, 0.0, 0.0]).with_time(torch.tensor([0.0, 0.3, 0.6]))
    cams = Camera(cams.c2w[:1].expand(3, 4, 4), cams.fovy[:1].expand(3), 24, 24, cams.time)
    g.set_stage("static")
    with torch.no_grad():
        out = g.render(cams, WHITE)
    torch.testing.assert_close(out.rgb[1], out.rgb[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.rgb[2], out.rgb[0], rtol=0, atol=1e-6)
    points = torch.rand(20, 3)
    assert torch.equal(g.deform_points(points, 0.4), points)
    g.set_stage("motion")
    with torch.no_grad():
        out = g.render(cams, WHITE)
    assert (out.rgb[1] - out.rgb[0]).abs().max() > 1e-3


def test_a_batch_of_mixed_times_equals_each_time_rendered_alone():
    g = _g4()
    _perturb(g)
    cams = _cameras([0.1, 0.5, 0.1, 0.8])
    with torch.no_grad():
        together = g.render(cams, WHITE)
        alone = [g.render(cams[i:i + 1], WHITE) for i in range(4)]
    for i in range(4):
        torch.testing.assert_close(together.rgb[i], alone[i].rgb[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(together.alpha[i], alone[i].alpha[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(together.depth[i], alone[i].depth[0], rtol=0, atol=1e-5)
    assert torch.equal(together.extras["times"], cams.times)
    assert (together.rgb[0] - together.rgb[2]).abs().max() > 0  # same time, other view


def test_a_hand_set_track_moves_points_and_renders_by_exactly_that():
    g = _g4()
    with torch.no_grad():
        g.track.translation[:, 0] = 0.3
    points = torch.rand(30, 3)
    for t in (0.0, 0.3, 0.95):
        torch.testing.assert_close(g.deform_points(points, t), points + torch.tensor([0.3, 0.0, 0.0]), rtol=0, atol=1e-6)
    cams = _cameras([0.2, 0.6])
    shifted = cams.c2w.clone()
    shifted[:, 0, 3] += 0.3  # the camera follows the object
    with torch.no_grad():
        moved = g.render(Camera(shifted, cams.fovy, 24, 24, cams.time), WHITE)
        g.set_stage("static")
        still = g.render(cams, WHITE)
    torch.testing.assert_close(moved.rgb, still.rgb, rtol=0, atol=1e-4)
    # rotation (a quarter turn about z) and scale (×2) at every keyframe
    g.set_stage("motion")
    with torch.no_grad():
        g.track.translation.zero_()
        g.track.rotation[:, 2] = math.pi / 2
        g.track.log_scale.fill_(math.log(2.0))
    got = g.deform_points(torch.tensor([[1.0, 0.0, 0.5]]), 0.4)
    torch.testing.assert_close(got, torch.tensor([[0.0, 2.0, 1.0]]), rtol=0, atol=1e-5)
    arrays = g.splat_arrays_at(0.4)
    assert np.allclose(arrays.log_scales, g.splat_arrays().log_scales + math.log(2.0), atol=1e-6)
    q = torch.from_numpy(arrays.quats)
    expected = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])  # canonical quats are identity
    torch.testing.assert_close(torch.nn.functional.normalize(q, dim=-1), expected.expand_as(q), rtol=0, atol=1e-6)


def test_regularisers_are_zero_at_first_and_positive_once_it_moves():
    g = _g4()
    names = {f.name for f in dataclasses.fields(Motion4DRegularizers)}
    assert names == {"opacity", "sparsity", "time_smoothness", "plane_tv", "rigidity"}
    assert g.regularizer_weights is Motion4DRegularizers
    terms = g.regularization(g.render(_cameras([0.1, 0.6]), WHITE))
    assert set(terms) == names
    assert terms["opacity"] > 0 and terms["sparsity"] > 0
    for name in ("time_smoothness", "plane_tv", "rigidity"):
        assert terms[name].item() == 0.0, name
    _perturb(g)
    terms = g.regularization(g.render(_cameras([0.1, 0.6]), WHITE))
    for name in ("time_smoothness", "plane_tv", "rigidity"):
        assert terms[name].item() > 0, name
        assert terms[name].requires_grad, name
    g.set_stage("static")
    terms = g.regularization(g.render(_cameras([0.1, 0.6]), WHITE))
    assert set(terms) == names and all(terms[n].item() == 0.0 for n in ("time_smoothness", "plane_tv", "rigidity"))


def test_rigidity_ignores_the_track_and_sees_the_local_stretch():
    g = _g4()
    with torch.no_grad():
        g.track.rotation[:, 1] = 1.0
        g.track.translation[:, 2] = 0.5
        g.track.log_scale.fill_(0.3)
    assert g.regularization(g.render(_cameras([0.3]), WHITE))["rigidity"].item() == 0.0
    with torch.no_grad():
        g.deformation.head_dx.bias.fill_(0.2)  # a uniform shift is rigid too
    assert g.regularization(g.render(_cameras([0.3]), WHITE))["rigidity"].item() < 1e-10
    _perturb(g, track=False)
    assert g.regularization(g.render(_cameras([0.3]), WHITE))["rigidity"].item() > 0


def _densify_once(g: Gaussians4D, opt, step: int) -> None:
    out = g.render(_cameras([0.2, 0.7]))
    opt.zero_grad(set_to_none=True)
    (out.rgb - torch.tensor([0.0, 1.0, 0.0])).square().sum().mul(100).backward()
    opt.step()
    g.after_step(step, opt)


def test_motion_never_densifies_and_a_densified_checkpoint_round_trips():
    dense = dict(densify=True, refine_start=0, refine_every=1, grow_grad2d=1e-6, prune_opacity=0.3)
    g = _g4(**dense)
    opt = torch.optim.Adam(g.parameter_groups(), lr=1e-3)
    before = g.num_gaussians
    _densify_once(g, opt, step=1)  # stage motion: no densification
    assert g.num_gaussians == before
    g.set_stage("static")
    _densify_once(g, opt, step=2)
    assert g.num_gaussians != before
    g.set_stage("motion")
    _perturb(g)
    _densify_once(g, opt, step=3)  # the resized tensors train on, and the rigidity neighbours follow N
    assert g.regularization(g.render(_cameras([0.5])))["rigidity"].isfinite()
    state = g.state_dict()
    cams = _cameras([0.15, 0.55, 0.9])
    with torch.no_grad():
        expected = g.render(cams, WHITE)
    fresh = _g4(**dense)
    fresh.load_state_dict(state)
    assert fresh.num_gaussians == g.num_gaussians
    with torch.no_grad():
        got = fresh.render(cams, WHITE)
    torch.testing.assert_close(got.rgb, expected.rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.depth, expected.depth, rtol=0, atol=1e-5)
    deformation = g.deformation_state()
    assert set(deformation) >= {"deformation.spatial", "deformation.temporal", "track.translation"}
    for key, value in fresh.deformation_state().items():
        assert torch.equal(value, deformation[key]), key


def test_parameter_groups_scale_and_the_track_can_be_off():
    g = _g4(track=False)
    groups = g.parameter_groups(lr_scale=0.5)
    by_name = {group["name"]: group for group in groups}
    assert "deformation_track" not in by_name and g.track is None
    assert by_name["deformation_planes"]["lr"] == pytest.approx(0.5 * g.config.lr_planes)
    assert by_name["deformation_mlp"]["lr"] == pytest.approx(0.5 * g.config.lr_mlp)
    R, c, s = g.track_pose([0.1, 0.2, 0.3])
    assert R.shape == (3, 3, 3) and c.shape == (3, 3) and s.shape == (3,)
    out = g.render(_cameras([0.1, 0.9]), WHITE)
    assert out.rgb.shape == (2, 24, 24, 3)


def test_the_registry_builds_it_and_bad_settings_are_one_line_errors():
    config = registry.default_config("representation", "gaussians4d")
    assert isinstance(config, Gaussians4DConfig) and config.track and config.plane_resolution == 32
    cls = registry.component_class("representation", "gaussians4d")
    assert cls is Gaussians4D
    g = cls(dataclasses.replace(config, num_gaussians=64, densify=False))
    assert g.to_mesh(24) is not None and g.num_gaussians == 64
    with pytest.raises(UserError, match="time_resolution"):
        Gaussians4DConfig(time_resolution=1)
    with pytest.raises(UserError, match="lr_track"):
        Gaussians4DConfig(lr_track=0.0)
    with pytest.raises(UserError, match="init_shape"):  # the parent's checks still run
        Gaussians4DConfig(init="shape")


def test_a_full_turn_of_keyframes_interpolates_forward_between_every_pair():
    """Keyframes 22.5°·k about +Y (one turn over 16 keys): between key 15 (337.5°) and key 0 (360° ≡ 0°) the
    track keeps turning forwards (348.75°), it does not turn back through 180° as an axis-angle lerp would."""
    from dreamer.representations.gaussians4d import SimilarityTrack

    track = SimilarityTrack(16)
    with torch.no_grad():
        angles = torch.remainder(torch.arange(16) * 22.5 + 180.0, 360.0) - 180.0  # as learned: in (−180°, 180°]
        track.rotation[:, 1] = torch.deg2rad(angles)
    times = (torch.arange(32) + 0.5) / 32  # half-way between keys
    R, _, _, _ = track(times)
    x = torch.tensor([0.0, 0.0, 1.0])
    turned = R @ x  # +Z turned about +Y by θ: (sin θ, 0, cos θ)
    theta = torch.rad2deg(torch.atan2(turned[:, 0], turned[:, 2])) % 360.0
    expected = (times * 360.0) % 360.0
    assert torch.allclose(theta, expected, atol=0.2)
