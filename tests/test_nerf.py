"""The NeRF representation: rendering contract, occupancy skip, checkpoints, meshes, a fit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dreamer.cameras import Camera, from_spherical, look_at
from dreamer.errors import UserError
from dreamer.render.rays import camera_rays
from dreamer.representations.nerf import NeRF, NeRFConfig

BALL_CENTRE = torch.tensor([0.25, 0.1, -0.1])
BALL_RADIUS = 0.35
BALL_COLOUR = torch.tensor([0.2, 0.8, 0.3])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These renders are small: one thread is about as fast as two on an idle machine, and
    ~10-20x faster on a busy 2-core one (OpenMP threads wait on descheduled partners)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cams(n: int = 2, res: int = 16, elevation: float = 20.0) -> Camera:
    return from_spherical(torch.arange(n) * (360.0 / n), elevation, 2.8, 42.5, res)


def ball_renders(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact renders [B, H, W, 3] of a coloured ball over white, and its silhouette [B, H, W]."""
    o, d = camera_rays(camera)
    oc = o - BALL_CENTRE
    b = (oc * d).sum(-1)
    hit = b * b - ((oc * oc).sum(-1) - BALL_RADIUS ** 2) > 0
    rgb = torch.where(hit[..., None], BALL_COLOUR.expand(*hit.shape, 3), torch.ones(3))
    return rgb, hit


def perturbed(config: NeRFConfig, seed: int = 0, scale: float = 0.5) -> NeRF:
    """A NeRF with a non-trivial (random) field on top of the blob."""
    torch.manual_seed(seed)
    model = NeRF(config)
    with torch.no_grad():
        for p in model.encoding.parameters():
            p.add_(torch.randn_like(p) * scale)
        model.mlp[-1].weight.mul_(4.0)  # let the features move density and colour visibly
    return model


@pytest.mark.parametrize("background", ["learned", "white", "black", "random"])
def test_render_shapes_and_ranges(background):
    model = NeRF(NeRFConfig(background=background))
    out = model.render(cams(2, 12))
    assert out.rgb.shape == (2, 12, 12, 3)
    assert out.alpha.shape == out.depth.shape == (2, 12, 12, 1)
    assert out.rgb.dtype == torch.float32
    assert 0 <= out.rgb.min() and out.rgb.max() <= 1
    assert 0 <= out.alpha.min() and out.alpha.max() <= 1
    assert (out.depth >= 0).all() and out.depth.max() < 2.8 + 1.8
    assert torch.equal(out.extras["opacity"], out.alpha)
    reg = model.regularization(out)
    assert set(reg) == {"opacity", "sparsity"} and all(v.ndim == 0 for v in reg.values())


@pytest.mark.parametrize("grid", ["triplane", "dense", "hash"])
def test_gradients_reach_grid_mlp_and_background(grid):
    model = NeRF(NeRFConfig(grid=grid, background="learned", occupancy=False))
    out = model.render(cams(1, 8))
    loss = out.rgb.mean() + sum(model.regularization(out).values())
    loss.backward()
    groups = {g["name"]: g for g in model.parameter_groups(lr_scale=0.5)}
    assert set(groups) == {"grid", "mlp", "background"}
    assert groups["grid"]["lr"] == pytest.approx(0.5 * model.config.lr_grid)
    for name in groups:
        grads = [p.grad for p in groups[name]["params"]]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name
    n_params = sum(len(g["params"]) for g in groups.values())
    assert n_params == len(list(model.parameters()))  # every parameter is in one group


def test_initial_blob_is_a_centred_disc():
    model = NeRF(NeRFConfig()).eval()
    alpha = model.render(cams(1, 16)).alpha[0, ..., 0]
    centre, corner = alpha[7:9, 7:9].mean(), alpha[0, 0]
    assert centre > 0.9 and corner < 0.05
    assert alpha.T.flip(0).allclose(alpha.T, atol=0.05)  # left-right symmetric


def test_ray_missing_the_box_sees_only_background():
    c2w = look_at(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, 6.0]]))  # looks away
    camera = Camera(c2w, torch.tensor([40.0]), 8, 8)
    model = NeRF(NeRFConfig())
    out = model.render(camera, background=torch.tensor([0.1, 0.2, 0.3]))
    assert (out.alpha == 0).all() and (out.depth == 0).all()
    assert torch.allclose(out.rgb, torch.tensor([0.1, 0.2, 0.3]).expand(1, 8, 8, 3))


def test_background_tensor_is_composited():
    model = NeRF(NeRFConfig(background="learned")).eval()
    camera = cams(2, 8)
    bg = torch.rand(2, 1, 1, 3)
    a, b = model.render(camera, background=bg), model.render(camera, background=torch.zeros(3))
    assert torch.allclose(a.rgb, b.rgb + (1 - b.alpha) * bg, atol=1e-6)


@pytest.mark.parametrize("threshold,tol", [(None, 0.02), (0.001, 0.005)])
def test_occupancy_skip_matches_dense_render(threshold, tol):
    cfg = NeRFConfig(occupancy=True, occupancy_update_every=1)
    if threshold is not None:
        cfg.occupancy_threshold = threshold
    model = perturbed(cfg).eval()
    camera = cams(2, 24)
    dense = model.render(camera)  # no update yet: every sample runs the field
    for step in range(3):
        model.before_step(step)
    skip = model.render(camera)
    assert skip.extras["num_samples"] < 0.5 * dense.extras["num_samples"]
    # skipped cells hold samples of alpha < threshold each: the error is a faint tail
    assert (skip.rgb - dense.rgb).abs().max() < tol
    assert (skip.alpha - dense.alpha).abs().max() < tol
    model.config.occupancy = False  # off: exactly the dense render again
    assert torch.equal(model.render(camera).rgb, dense.rgb)


def test_training_jitter_is_seeded_and_eval_is_deterministic():
    model = NeRF(NeRFConfig(background="random")).train()
    camera = cams(2, 8)
    r = [model.render(camera, generator=torch.Generator().manual_seed(s)).rgb for s in (0, 0, 1)]
    assert torch.equal(r[0], r[1]) and not torch.equal(r[0], r[2])
    torch.manual_seed(5)
    a = model.render(camera).rgb
    torch.manual_seed(5)
    assert torch.equal(a, model.render(camera).rgb)
    model.eval()
    assert torch.equal(model.render(camera).rgb, model.render(camera).rgb)


def test_state_dict_round_trip():
    cfg = NeRFConfig(background="learned")
    a = perturbed(cfg, seed=1)
    a.update_occupancy()
    sd = a.state_dict()
    assert {"occupancy_density", "occupancy_mask", "occupancy_updates"} <= set(sd)
    torch.manual_seed(2)
    b = NeRF(cfg)
    b.load_state_dict(sd)
    a.eval(), b.eval()
    camera = cams(2, 12)
    ra, rb = a.render(camera), b.render(camera)
    assert torch.equal(ra.rgb, rb.rgb) and torch.equal(ra.depth, rb.depth)


def test_diffuse_shading_renders_and_differs_from_albedo():
    model = NeRF(NeRFConfig(shading="diffuse", background="white")).eval()
    out = model.render(cams(1, 8))
    out.rgb.mean().backward()
    plain = NeRF(NeRFConfig(background="white")).eval()
    plain.load_state_dict(model.state_dict())
    assert 0 <= out.rgb.min() and out.rgb.max() <= 1
    assert not torch.allclose(out.rgb, plain.render(cams(1, 8)).rgb)


def test_config_rejects_unknown_names():
    with pytest.raises(UserError):
        NeRFConfig(grid="octree")
    with pytest.raises(UserError):
        NeRFConfig(background="grey")
    with pytest.raises(UserError):
        NeRFConfig(num_samples=0)


def test_backend_choice(monkeypatch):
    import dreamer.representations.nerf as nerf_module

    monkeypatch.setattr(nerf_module, "_nerfacc_available", lambda: (False, "not here"))
    assert NeRF(NeRFConfig())._backend(torch.device("cpu")) == "torch"
    with pytest.warns(UserWarning, match="not here"):
        assert NeRF(NeRFConfig())._backend(torch.device("cuda")) == "torch"
    with pytest.raises(UserError):
        NeRF(NeRFConfig(backend="nerfacc"))._backend(torch.device("cuda"))
    with pytest.raises(UserError):
        NeRF(NeRFConfig(backend="nerfacc"))._backend(torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["torch", "nerfacc"])
def test_cuda_render_matches_cpu(backend):
    cpu = perturbed(NeRFConfig(backend="torch", background="white")).eval()
    cpu.update_occupancy(generator=torch.Generator().manual_seed(0))
    gpu = NeRF(NeRFConfig(backend=backend, background="white"))
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().eval()
    camera = cams(2, 32)
    a, b = cpu.render(camera), gpu.render(camera.to("cuda"))
    diff = (a.rgb - b.rgb.cpu()).abs()
    if backend == "torch":  # the same samples: equal up to float rounding
        assert diff.max() < 1e-3
    else:  # nerfacc marches its own fixed-step samples: equal up to sampling error
        assert diff.mean() < 0.01 and (a.alpha - b.alpha.cpu()).abs().mean() < 0.02
    gpu.train()
    gpu.render(camera.to("cuda")).rgb.mean().backward()
    assert all(p.grad is not None for p in gpu.encoding.parameters())


def test_importing_nerf_does_not_import_nerfacc():
    code = "import sys, dreamer.representations.nerf; assert 'nerfacc' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_to_mesh_of_a_known_sphere():
    # MLP output zero except the colour bias: density = softplus(200 (1 - r / 0.4)), a sharp
    # ball of radius 0.4; albedo sigmoid(3, -3, -3) = reddish
    model = NeRF(NeRFConfig(blob_density=200.0, blob_radius=0.4))
    with torch.no_grad():
        last = model.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 3.0, -3.0, -3.0]))
    mesh = model.to_mesh(resolution=48)
    r = np.linalg.norm(mesh.vertices, axis=1)
    # the rendered outline is a little inside 0.4 (alpha reaches 0.5 at r ~ 0.39)
    assert 0.38 < r.mean() < 0.405 and r.std() < 0.01
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * r.mean() ** 3, rel=0.05)  # outward winding
    colours = mesh.visual.vertex_colors
    assert colours.shape == (len(mesh.vertices), 4) and colours.dtype == np.uint8
    assert np.abs(colours[:, :3].astype(int) - [243, 12, 12]).max() <= 2


def test_to_mesh_is_empty_when_nothing_is_opaque():
    model = NeRF(NeRFConfig(blob_density=0.0))
    with torch.no_grad():
        model.mlp[-1].bias[0] = -10.0  # density ~ softplus(-10) = 5e-5 everywhere
    assert len(model.to_mesh(resolution=16).faces) == 0


@pytest.fixture(scope="module")
def fitted_ball():
    """A NeRF fitted by MSE to 6 exact renders of a coloured ball, 100 steps at 32 px (MLP
    learning rate 1e-2: converges in fewer steps than the SDS-oriented default of 1e-3)."""
    torch.manual_seed(0)
    model = NeRF(NeRFConfig(background="white", lr_mlp=1e-2)).train()
    opt = torch.optim.Adam(model.parameter_groups())
    train = from_spherical(torch.arange(6) * 60.0, torch.tensor([20.0, -10.0] * 3), 2.8, 42.5, 32)
    target, _ = ball_renders(train)
    white = torch.ones(3)
    for step in range(100):
        model.before_step(step)
        idx = torch.randperm(6)[:2]
        loss = (model.render(train[idx], background=white).rgb - target[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step(step, opt)
    return model.eval()


def test_fit_matches_held_out_silhouettes(fitted_ball):
    test = from_spherical(torch.tensor([30.0, 200.0]), 35.0, 2.8, 42.5, 32)
    with torch.no_grad():
        out = fitted_ball.render(test, background=torch.ones(3))
    _, hit = ball_renders(test)
    pred = out.alpha[..., 0] > 0.5
    iou = (pred & hit).sum() / (pred | hit).sum()
    assert iou > 0.8, float(iou)


def test_mesh_of_fitted_ball(fitted_ball):
    mesh = fitted_ball.to_mesh(resolution=64)
    r = np.linalg.norm(mesh.vertices - BALL_CENTRE.numpy(), axis=1)
    assert abs(r.mean() - BALL_RADIUS) < 0.05, r.mean()
    colour = mesh.visual.vertex_colors[:, :3].astype(float).mean(0) / 255
    assert np.abs(colour - BALL_COLOUR.numpy()).max() < 0.15, colour


def test_world_shading_lights_the_blob_from_a_light_fixed_in_the_world():
    """Half-Lambert from `light_direction`: the blob's face towards the light shows the full albedo, the face
    away from it the ambient share, whichever camera looks; albedo shading shows the same albedo from both."""
    light = torch.tensor([0.5, 1.0, 0.8])
    towards, away = light / light.norm() * 3.0, -light / light.norm() * 3.0
    camera = Camera(look_at(torch.stack([towards, away])), torch.tensor([20.0, 20.0]), 9, 9)
    renders = {}
    for shading in ("albedo", "world"):
        model = NeRF(NeRFConfig(shading=shading, ambient=0.5, occupancy=False)).eval()
        torch.nn.init.zeros_(model.mlp[-1].weight)  # a grey albedo (sigmoid 0) everywhere, the blob's density
        torch.nn.init.zeros_(model.mlp[-1].bias)
        with torch.no_grad():
            renders[shading] = model.render(camera, background=torch.zeros(3)).rgb[:, 4, 4]  # [2, 3] centre pixels
    torch.testing.assert_close(renders["albedo"], torch.full((2, 3), 0.5), atol=0.02, rtol=0)
    lit, unlit = renders["world"][0], renders["world"][1]
    torch.testing.assert_close(lit, torch.full((3,), 0.5), atol=0.03, rtol=0)  # 0.5 · (0.5 + 0.5 · 1)
    torch.testing.assert_close(unlit, torch.full((3,), 0.25), atol=0.03, rtol=0)  # 0.5 · (0.5 + 0.5 · 0)
