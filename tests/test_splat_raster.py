"""The CPU Gaussian-splat rasterizer against gsplat's pure-PyTorch reference functions (projection),
a dense all-pairs renderer (images and gradients) and a transcription of gsplat's per-pixel loop."""

import math

import pytest
import torch

from dreamer.cameras import Camera, from_spherical
from dreamer.render.splat import SplatRender, rasterize_gaussians
from dreamer.render.splat.composite import ALPHA_THRESHOLD, MIN_TRANSMITTANCE, composite_chunks
from dreamer.render.splat.dense import rasterize_dense
from dreamer.render.splat.projection import (
    camera_to_opencv,
    project_gaussians,
    quat_scale_to_covariance,
)

gsplat_torch = pytest.importorskip("gsplat.cuda._torch_impl")


def random_gaussians(n: int, seed: int, dtype=torch.float32, scale_range=(0.005, 0.05),
                     opacity_range=(0.1, 0.9)) -> list[torch.Tensor]:
    """means, quats, scales, opacities, colors of n Gaussians in a ball of radius 0.6."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    means = direction * 0.6 * torch.rand(n, 1, generator=g) ** (1 / 3)
    quats = torch.randn(n, 4, generator=g)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    scales = torch.exp(lo + (hi - lo) * torch.rand(n, 3, generator=g))
    opacities = opacity_range[0] + (opacity_range[1] - opacity_range[0]) * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    return [t.to(dtype) for t in (means, quats, scales, opacities, colors)]


def hard_scene(seed: int) -> list[torch.Tensor]:
    """Ordinary Gaussians plus: some behind the camera or on its plane, tiny and huge ones,
    near-opaque ones (alpha clamp) and a stack of opaque ones in the middle (early stop)."""
    means, quats, scales, opacities, colors = random_gaussians(200, seed, scale_range=(0.005, 0.2),
                                                               opacity_range=(0.05, 1.0))
    g = torch.Generator().manual_seed(seed + 100)
    behind = torch.tensor([[0.0, 0.0, 4.0], [0.3, 0.1, 3.5], [0.0, 0.0, 2.8], [0.2, -0.1, 2.8]])
    extra_means = torch.cat([behind, 0.5 * torch.randn(12, 3, generator=g),
                             0.05 * torch.randn(16, 3, generator=g)])
    extra_scales = torch.cat([torch.full((4, 3), 0.1), torch.full((4, 3), 1e-4),
                              torch.full((4, 3), 0.8), torch.full((4, 3), 0.04), torch.full((16, 3), 0.3)])
    extra_opacities = torch.cat([torch.full((4,), 0.8), torch.full((4,), 0.9),
                                 torch.full((4,), 0.3), torch.full((4,), 0.9995), torch.full((16,), 0.99)])
    n = len(extra_means)
    return [torch.cat([means, extra_means]), torch.cat([quats, torch.randn(n, 4, generator=g)]),
            torch.cat([scales, extra_scales]), torch.cat([opacities, extra_opacities]),
            torch.cat([colors, torch.rand(n, 3, generator=g)])]


def two_cameras(width: int = 30, height: int = 22) -> Camera:
    return from_spherical(torch.tensor([10.0, 200.0]), torch.tensor([15.0, -5.0]), 2.8, 42.5,
                          width, height)


def snap_to_tile_borders(means: torch.Tensor, camera: Camera, tile_size: int, count: int) -> torch.Tensor:
    """Move the first `count` means so that they project exactly onto tile corners of view 0."""
    viewmats, Ks = camera_to_opencv(camera[0])
    c2w_cv = torch.linalg.inv(viewmats[0])
    means = means.clone()
    for i in range(count):
        px = torch.tensor([tile_size * (1 + i % 3), tile_size * (1 + i // 3 % 2)], dtype=means.dtype)
        z = 2.8 + 0.1 * i
        ray = torch.linalg.solve(Ks[0], torch.cat([px, torch.ones(1)]))  # camera-frame direction
        means[i] = (c2w_cv @ torch.cat([ray * z, torch.ones(1)]))[:3]
    return means


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


# --- projection against gsplat's reference functions -----------------------------------------


def test_covariance_matches_gsplat():
    _, quats, scales, _, _ = random_gaussians(500, 0, dtype=torch.float64)
    ref, _ = gsplat_torch._quat_scale_to_covar_preci(quats * 2.5, scales, compute_preci=False)
    assert torch.allclose(quat_scale_to_covariance(quats * 2.5, scales), ref, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_projection_matches_gsplat(dtype, tol):
    means, quats, scales, _, _ = random_gaussians(800, 1, dtype=dtype, scale_range=(0.005, 0.5))
    means = means * 5  # many behind the cameras, off-screen, or clamped by the frustum margin
    camera = two_cameras()
    viewmats, Ks = (t.to(dtype) for t in camera_to_opencv(camera))
    covars, _ = gsplat_torch._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = gsplat_torch._fully_fused_projection(
        means, covars, viewmats, Ks, camera.width, camera.height, eps2d=0.3, near_plane=0.01)
    ours = project_gaussians(means, quats, scales, viewmats, Ks, camera.width, camera.height)

    visible = (radii > 0).all(dim=-1)
    assert 100 < int(visible.sum()) < visible.numel()  # the scene exercises culling
    if dtype == torch.float64:
        assert torch.equal(ours.radii, radii)
    else:  # a ceil() may land on the other side of an integer in float32
        assert (ours.radii != radii).any(dim=-1).float().mean() < 0.01
    both = visible & ours.visible
    assert torch.allclose(ours.depths, depths, atol=tol)
    assert torch.allclose(ours.means2d[both], means2d[both], atol=tol * 100, rtol=tol)
    assert torch.allclose(ours.conics[both], conics[both], atol=tol, rtol=tol * 10)
    # gsplat's covariance in the camera frame, projected by its own Jacobian, plus eps2d.
    means_c, covars_c = gsplat_torch._world_to_cam(means, covars, viewmats)
    _, covars2d = gsplat_torch._persp_proj(means_c, covars_c, Ks, camera.width, camera.height)
    covars2d = covars2d + 0.3 * torch.eye(2, dtype=dtype)
    assert torch.allclose(ours.covars2d[both], covars2d[both], atol=tol, rtol=tol * 10)


def test_opacity_aware_box_is_tighter_and_culls_faint_gaussians():
    means, quats, scales, opacities, _ = random_gaussians(300, 2, opacity_range=(0.0, 1.0))
    camera = two_cameras()
    viewmats, Ks = camera_to_opencv(camera)
    plain = project_gaussians(means, quats, scales, viewmats, Ks, camera.width, camera.height)
    aware = project_gaussians(means, quats, scales, viewmats, Ks, camera.width, camera.height,
                              opacities=opacities)
    assert (aware.radii <= plain.radii).all()
    assert not aware.visible[:, opacities < ALPHA_THRESHOLD].any()


# --- the tile rasterizer against the dense reference ------------------------------------------


@pytest.mark.parametrize("seed,tile_size,chunk,early_stop",
                         [(0, 4, 8, True), (1, 16, None, False), (2, 8, 8, False), (3, 4, 4, True)])
def test_tile_render_equals_dense_reference(seed, tile_size, chunk, early_stop):
    camera = two_cameras()
    params = hard_scene(seed)
    params[0] = snap_to_tile_borders(params[0], camera, tile_size, 6)
    background = torch.rand(2, 3, generator=torch.Generator().manual_seed(seed))
    leaves = [p.clone().requires_grad_() for p in params]
    dense_leaves = [p.clone().requires_grad_() for p in params]

    out = rasterize_gaussians(*leaves, camera, background, tile_size=tile_size, chunk=chunk)
    ref = rasterize_dense(*dense_leaves, camera, background)
    assert (out.rgb - ref.rgb).abs().max() <= 1e-4
    assert (out.alpha - ref.alpha).abs().max() <= 1e-4
    hit = ref.alpha > 1e-2
    assert torch.allclose(out.depth[hit], ref.depth[hit], rtol=1e-3)
    assert (out.depth[ref.alpha == 0] == 0).all()
    assert ref.alpha.max() > 0.999  # some pixels reach the early stop (there alpha < 1 - 1e-4)
    evaluated, chunks = out.info["chunks"]
    assert (evaluated < chunks) == early_stop  # saturated tiles skipped their hidden chunks

    g = torch.Generator().manual_seed(seed + 7)
    w_rgb, w_alpha = torch.randn(out.rgb.shape, generator=g), torch.randn(out.alpha.shape, generator=g)
    ((out.rgb * w_rgb).sum() + (out.alpha * w_alpha).sum()).backward()
    ((ref.rgb * w_rgb).sum() + (ref.alpha * w_alpha).sum()).backward()
    for name, a, b in zip(["means", "quats", "scales", "opacities", "colors"], leaves, dense_leaves):
        assert torch.isfinite(a.grad).all(), name
        assert cosine(a.grad, b.grad) >= 0.999, name


def test_float64_render_and_gradients_equal_dense_to_rounding():
    camera = two_cameras()
    params = [p.double() for p in hard_scene(0)]
    leaves = [p.clone().requires_grad_() for p in params]
    dense_leaves = [p.clone().requires_grad_() for p in params]
    out = rasterize_gaussians(*leaves, camera, chunk=8)
    ref = rasterize_dense(*dense_leaves, camera)
    assert out.info["chunks"][0] < out.info["chunks"][1]  # with early stops
    assert (out.rgb - ref.rgb).abs().max() < 1e-12 and (out.alpha - ref.alpha).abs().max() < 1e-12
    (out.rgb.sum() + out.alpha.sum()).backward()
    (ref.rgb.sum() + ref.alpha.sum()).backward()
    for a, b in zip(leaves, dense_leaves):
        assert (a.grad - b.grad).abs().max() < 1e-10 * b.grad.abs().max()


def test_per_view_features_and_unnormalised_quats():
    camera = two_cameras(16, 16)
    means, quats, scales, opacities, _ = random_gaussians(100, 3)
    features = torch.rand(2, 100, 5)  # [B, N, D] per-view features
    out = rasterize_gaussians(means, quats * 3.0, scales, opacities, features, camera)
    ref = rasterize_dense(means, quats, scales, opacities, features, camera)
    assert out.rgb.shape == (2, 16, 16, 5)
    assert (out.rgb - ref.rgb).abs().max() <= 1e-4


def gsplat_kernel_transcription(means2d, conics, opacities, colors, depths, visible, width, height):
    """gsplat's forward kernel (RasterizeToPixels3DGSFwd.cu) for one image, pixel by pixel."""
    order = [int(i) for i in torch.argsort(depths) if visible[i]]
    rgb, alpha = torch.zeros(height, width, colors.shape[-1]), torch.zeros(height, width, 1)
    for i in range(height):
        for j in range(width):
            px, py, T, acc = j + 0.5, i + 0.5, 1.0, torch.zeros(colors.shape[-1])
            for g in order:
                dx, dy = float(means2d[g, 0]) - px, float(means2d[g, 1]) - py
                a, b, c = (float(v) for v in conics[g])
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                a_ = min(0.999, float(opacities[g]) * math.exp(-sigma))
                if sigma < 0 or a_ < ALPHA_THRESHOLD:
                    continue
                next_T = T * (1 - a_)
                if next_T <= MIN_TRANSMITTANCE:
                    break
                acc += colors[g] * a_ * T
                T = next_T
            rgb[i, j], alpha[i, j] = acc, 1 - T
    return rgb, alpha


def test_matches_transcription_of_gsplat_kernel():
    camera = from_spherical(30.0, 10.0, 2.8, 42.5, 12, 10)
    means, quats, scales, opacities, colors = random_gaussians(40, 4, scale_range=(0.05, 0.3),
                                                               opacity_range=(0.3, 1.0))
    out = rasterize_gaussians(means, quats, scales, opacities, colors, camera)
    viewmats, Ks = camera_to_opencv(camera)
    proj = project_gaussians(means, quats, scales, viewmats, Ks, 12, 10, opacities=opacities)
    rgb, alpha = gsplat_kernel_transcription(proj.means2d[0], proj.conics[0], opacities, colors,
                                             proj.depths[0], proj.visible[0], 12, 10)
    assert alpha.max() > 0.999  # the early stop is exercised
    assert (out.rgb[0] - rgb).abs().max() <= 1e-4
    assert (out.alpha[0] - alpha).abs().max() <= 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="gsplat's rasterizer needs CUDA")
def test_matches_gsplat_cuda_rasterization():
    from gsplat import rasterization

    camera = two_cameras(64, 48)
    params = random_gaussians(2000, 5)
    background = torch.rand(2, 3)
    out = rasterize_gaussians(*params, camera, background)
    viewmats, Ks = camera_to_opencv(camera)
    cuda = [p.cuda() for p in params]
    rgb, alpha, meta = rasterization(*cuda, viewmats.cuda(), Ks.cuda(), 64, 48, backgrounds=background.cuda(),
                                     eps2d=0.3, near_plane=0.01, packed=False)
    assert (rgb.cpu() - out.rgb).abs().max() <= 1e-3
    assert (alpha.cpu() - out.alpha).abs().max() <= 1e-3
    assert (meta["radii"].cpu() == out.info["radii_xy"]).all(dim=-1).float().mean() > 0.99


# --- compositing gradients, conventions, edge cases -------------------------------------------


def tiny_composite_case(seed: int, lo: float, hi: float, n_chunks=(2, 1, 3), L=3, P=4, F=2):
    """coefs, basis, feats, tile_first, tile_chunks for tiles of `n_chunks` chunks whose log
    alphas are U(log lo, log hi)."""
    g = torch.Generator().manual_seed(seed)
    C = sum(n_chunks)
    u = torch.rand(C, L, P, generator=g, dtype=torch.float64)
    log_alpha = math.log(lo) + (math.log(hi) - math.log(lo)) * u
    basis = torch.zeros(6, P, dtype=torch.float64)  # log alpha_p = coef_0 + coef_p (p ≥ 1)
    basis[0] = 1.0
    basis[1:P, 1:] = torch.eye(P - 1, dtype=torch.float64)
    coefs = torch.zeros(C, L, 6, dtype=torch.float64)
    coefs[..., 0] = log_alpha[..., 0]
    coefs[..., 1:P] = log_alpha[..., 1:] - log_alpha[..., :1]
    assert torch.allclose(coefs @ basis, log_alpha)
    feats = torch.rand(C, L, F, generator=g, dtype=torch.float64)
    counts = torch.tensor(n_chunks)
    return coefs, basis, feats, torch.cumsum(counts, 0) - counts, counts


@pytest.mark.parametrize("first_round", [1, 4])
def test_composite_backward_matches_gradcheck(first_round):
    # Alphas in (0.05, 0.5), away from the 1/255 threshold and the transmittance cut-off, where
    # the function is smooth; first_round=1 evaluates the chunks of the 3-chunk tile in 3 rounds.
    coefs, basis, feats, first, counts = tiny_composite_case(0, 0.05, 0.5, n_chunks=(1, 3), L=2)
    fn = lambda c, f: composite_chunks(c, basis, f, first, counts, True, first_round)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (coefs.requires_grad_(), feats.requires_grad_()))


def test_early_stop_rounds_change_nothing():
    """Saturating tiles: evaluating chunk by chunk with early stops equals evaluating everything."""
    coefs, basis, feats, first, counts = tiny_composite_case(1, 0.3, 0.995, n_chunks=(5, 1, 7, 2))
    results = []
    for first_round in (1, 100):
        c, f = coefs.clone().requires_grad_(), feats.clone().requires_grad_()
        out, evaluated = composite_chunks(c, basis, f, first, counts, True, first_round)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append((out, evaluated, c.grad, f.grad))
    (out1, done1, gc1, gf1), (out2, done2, gc2, gf2) = results
    assert done2.all() and not done1.all()  # chunk by chunk, some saturated tiles stopped early...
    assert torch.allclose(out1, out2, atol=1e-12)  # ...and drew the same, with the same gradients
    assert torch.allclose(gc1, gc2, atol=1e-12) and torch.allclose(gf1, gf2, atol=1e-12)


def test_camera_convention_centre_up_right():
    camera = from_spherical(0.0, 0.0, 3.0, 40.0, 32, 32)  # on +Z looking at the origin, +Y up
    means = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.4, 0.0], [0.4, 0.0, 0.0]])
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(3, 1)
    scales = torch.full((3, 3), 0.03)
    out = rasterize_gaussians(means, quats, scales, torch.full((3,), 0.9), torch.eye(3), camera)
    centre, up, right = out.info["means2d"][0]
    assert torch.allclose(centre, torch.tensor([16.0, 16.0]), atol=1e-4)
    assert up[1] < 12 and abs(float(up[0]) - 16) < 1e-4  # row 0 is the top of the image
    assert right[0] > 20 and abs(float(right[1]) - 16) < 1e-4
    green, red = out.rgb[0, ..., 1], out.rgb[0, ..., 0]
    assert green[:16].sum() > 10 * green[16:].sum()  # the upper Gaussian is drawn in the upper half
    assert red[:, 14:18].sum() > 0.5 and out.depth[0, 16, 16, 0] == pytest.approx(3.0, abs=1e-3)


def test_empty_scene_gives_background():
    camera = from_spherical(0.0, 0.0, 3.0, 40.0, 20, 12)  # at z = 3, looking down −Z
    means, quats, scales, opacities, colors = random_gaussians(50, 6)
    means = (means + torch.tensor([0.0, 0.0, 6.0])).requires_grad_()  # all behind the camera
    colors.requires_grad_()
    background = torch.tensor([[0.1, 0.2, 0.3]])
    out = rasterize_gaussians(means, quats, scales, opacities, colors, camera, background)
    assert out.info["n_isect"] == 0 and (out.info["radii"] == 0).all()
    assert torch.equal(out.rgb, background.expand(1, 12, 20, 3))
    assert (out.alpha == 0).all() and (out.depth == 0).all()
    (out.rgb.sum() + out.alpha.sum()).backward()
    assert torch.isfinite(means.grad).all() and torch.isfinite(colors.grad).all()


def test_batch_of_two_equals_two_single_renders():
    camera = two_cameras()
    params = random_gaussians(300, 7)
    background = torch.tensor([[0.5, 0.5, 0.5], [0.0, 1.0, 0.0]])
    both = rasterize_gaussians(*params, camera, background)
    for i in range(2):
        one = rasterize_gaussians(*params, camera[i], background[i:i + 1])
        assert torch.allclose(both.rgb[i], one.rgb[0], atol=1e-6)
        assert torch.allclose(both.alpha[i], one.alpha[0], atol=1e-6)
        assert torch.equal(both.info["radii"][i], one.info["radii"][0])


def test_info_for_densification():
    camera = two_cameras(24, 24)
    means, quats, scales, opacities, colors = (p.requires_grad_() for p in random_gaussians(100, 8))
    out = rasterize_gaussians(means, quats, scales, opacities, colors, camera)
    assert isinstance(out, SplatRender)
    assert out.rgb.shape == (2, 24, 24, 3) and out.alpha.shape == out.depth.shape == (2, 24, 24, 1)
    info = out.info
    assert info["radii"].shape == (2, 100) and info["radii"].dtype == torch.int32
    assert info["depths"].shape == (2, 100) and info["n_isect"] > 0
    assert (info["tile_size"], info["width"], info["height"]) == (4, 24, 24)
    out.rgb.sum().backward()
    grad2d = info["means2d"].grad
    assert grad2d is not None and grad2d.shape == (2, 100, 2)
    assert (grad2d[info["radii"] == 0] == 0).all() and grad2d.abs().sum() > 0
