import math

import pytest
import torch

from dreamer.cameras import Camera, OrbitConfig, from_spherical, sample_orbit, turntable, view_label_for
from dreamer.render.rays import camera_rays


def test_front_camera_sits_on_plus_z_and_looks_at_origin():
    cam = from_spherical(0.0, 0.0, 3.0, 40.0, 16)
    assert torch.allclose(cam.position[0], torch.tensor([0.0, 0.0, 3.0]), atol=1e-6)
    # camera looks along its local -Z: third column of c2w points away from the target
    assert torch.allclose(cam.c2w[0, :3, 2], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert torch.allclose(cam.c2w[0, :3, 1], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # up is +Y
    assert torch.allclose(cam.c2w[0, :3, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # right is +X


def test_spherical_round_trip():
    az = torch.tensor([0.0, 30.0, 135.0, 250.0, 359.0])
    el = torch.tensor([-10.0, 0.0, 20.0, 45.0, 80.0])
    d = torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0])
    cam = from_spherical(az, el, d, 45.0, 8)
    assert torch.allclose(cam.azimuth, az, atol=1e-3)
    assert torch.allclose(cam.elevation, el, atol=1e-3)
    assert torch.allclose(cam.distance, d, atol=1e-5)


def test_rotation_is_orthonormal_even_straight_above():
    cam = from_spherical(torch.tensor([0.0, 90.0]), torch.tensor([90.0, -90.0]), 3.0, 40.0, 8)
    R = cam.c2w[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5)
    assert torch.isfinite(cam.c2w).all()


def test_view_labels():
    assert view_label_for(0, 10) == "front"
    assert view_label_for(350, 10) == "front"
    assert view_label_for(90, 10) == "side"
    assert view_label_for(180, 10) == "back"
    assert view_label_for(270, 10) == "side"
    assert view_label_for(180, 70) == "overhead"
    cam = from_spherical([0, 90, 180, 0], [0, 0, 0, 75], 3.0, 40, 8)
    assert cam.view_label == ["front", "side", "back", "overhead"]


def test_intrinsics_match_fov():
    cam = from_spherical(0.0, 0.0, 3.0, 90.0, 64)
    K = cam.intrinsics[0]
    assert K[0, 0] == pytest.approx(32.0, rel=1e-5)  # f = (H/2)/tan(45°)
    assert K[0, 2] == pytest.approx(32.0) and K[1, 2] == pytest.approx(32.0)


def test_centre_ray_points_at_origin_and_corner_ray_spans_half_fov():
    cam = from_spherical(60.0, 25.0, 3.0, 40.0, 64, 64)
    origins, dirs = camera_rays(cam)
    assert origins.shape == (1, 64, 64, 3) and dirs.shape == (1, 64, 64, 3)
    centre = dirs[0, 31:33, 31:33].mean(dim=(0, 1))
    to_origin = -cam.position[0] / cam.position[0].norm()
    assert torch.nn.functional.cosine_similarity(centre, to_origin, dim=0) > 0.9999
    # top-centre pixel edge: angle to the axis is about fovy/2
    top = dirs[0, 0, 31:33].mean(0)
    angle = math.degrees(math.acos(float(torch.dot(torch.nn.functional.normalize(top, dim=0), to_origin))))
    assert angle == pytest.approx(20.0 - 0.5 * 40.0 / 64, abs=0.3)
    # the top row points upward in world space when the camera is level-ish
    assert dirs[0, 0, 32, 1] > dirs[0, 63, 32, 1]


def test_sample_orbit_respects_ranges_and_seed():
    cfg = OrbitConfig(distance=(2.0, 2.5), fovy=(30.0, 35.0), elevation=(0.0, 30.0))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = sample_orbit(256, cfg, 32, generator=g1)
    b = sample_orbit(256, cfg, 32, generator=g2)
    assert torch.equal(a.c2w, b.c2w)
    assert ((a.distance >= 2.0 - 1e-5) & (a.distance <= 2.5 + 1e-5)).all()
    assert ((a.elevation >= -1e-3) & (a.elevation <= 30.0 + 1e-3)).all()
    assert ((a.fovy >= 30.0) & (a.fovy <= 35.0)).all()
    assert a.azimuth.min() < 30 and a.azimuth.max() > 330  # azimuth covers the circle


def test_turntable_even_spacing_and_indexing():
    cam = turntable(8, 32)
    assert len(cam) == 8
    assert torch.allclose(cam.azimuth, torch.arange(8.0) * 45.0, atol=1e-3)
    sub = cam[2:4]
    assert isinstance(sub, Camera) and len(sub) == 2 and sub.width == 32
    assert len(cam[3]) == 1
