"""kornia replaced hand-written code: each test keeps a small copy of the old formula as the oracle
and checks the kornia-based function against it on random inputs."""

import pytest
import torch
import torch.nn.functional as F


# --- quaternions (dreamer.render.splat.projection.quat_to_rotmat) ---------------------------------

def _old_quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def _random_quats(dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Unnormalised w x y z quaternions of very different norms, with a leading batch shape."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(5, 40, 4, generator=gen, dtype=dtype)
    return q * torch.logspace(-3, 3, 40, dtype=dtype)[None, :, None]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_quat_to_rotmat_matches_the_hand_written_formula_values_and_gradients(dtype, tol):
    from dreamer.render.splat.projection import quat_to_rotmat

    q_new = _random_quats(dtype).requires_grad_(True)
    q_old = q_new.detach().clone().requires_grad_(True)
    new, old = quat_to_rotmat(q_new), _old_quat_to_rotmat(q_old)
    assert new.shape == (5, 40, 3, 3)
    torch.testing.assert_close(new, old, atol=tol, rtol=0)
    upstream = torch.randn(new.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    (new * upstream).sum().backward()
    (old * upstream).sum().backward()
    # the gradient scales as 1/|q|: compare relative to each quaternion's norm
    norm = q_old.detach().norm(dim=-1, keepdim=True)
    torch.testing.assert_close(q_new.grad * norm, q_old.grad * norm, atol=tol * 10, rtol=0)


def test_quat_to_rotmat_conventions_w_first_and_zero_is_identity():
    from dreamer.render.splat.projection import quat_to_rotmat

    half_turn_z = quat_to_rotmat(torch.tensor([0.0, 0.0, 0.0, 1.0]))  # (w, x, y, z): 180° about +z
    torch.testing.assert_close(half_turn_z, torch.diag(torch.tensor([-1.0, -1.0, 1.0])))
    torch.testing.assert_close(quat_to_rotmat(torch.zeros(2, 4)), torch.eye(3).expand(2, 3, 3))


def test_covariance_from_quats_unchanged():
    from dreamer.render.splat.projection import quat_scale_to_covariance

    q = _random_quats(torch.float64, seed=2)[0]
    s = torch.rand(40, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.01
    m = _old_quat_to_rotmat(q) * s[:, None, :]
    torch.testing.assert_close(quat_scale_to_covariance(q, s), m @ m.transpose(-1, -2), atol=1e-12, rtol=0)


# --- the evaluator classifier's augmentation (dreamer.eval.classifier_train) -----------------------

def _old_stretch(x, scale_x, scale_y, degrees):
    n = x.shape[0]
    angle = torch.deg2rad(degrees)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = cos / scale_x, sin / scale_x
    theta[:, 1, 0], theta[:, 1, 1] = -sin / scale_y, cos / scale_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _old_shift(x, max_shift, generator):
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_stretch_matches_the_affine_grid_version(dtype, tol):
    from dreamer.eval.classifier_train import stretch

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 4, 32, 32, generator=gen, dtype=dtype)
    sx = 0.5 + 1.5 * torch.rand(16, generator=gen, dtype=dtype)
    sy = 0.5 + 1.5 * torch.rand(16, generator=gen, dtype=dtype)
    degrees = (torch.rand(16, generator=gen, dtype=dtype) * 2 - 1) * 180
    torch.testing.assert_close(stretch(x, sx, sy, degrees), _old_stretch(x, sx, sy, degrees), atol=tol, rtol=0)
    torch.testing.assert_close(stretch(x, sx, sy), _old_stretch(x, sx, sy, torch.zeros(16, dtype=dtype)),
                               atol=tol, rtol=0)


def test_shift_matches_the_pad_and_crop_version_with_the_same_random_draws():
    from dreamer.eval.classifier_train import _shift

    x = torch.rand(12, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    for max_shift in (1, 2, 3):
        new_gen, old_gen = torch.Generator().manual_seed(max_shift), torch.Generator().manual_seed(max_shift)
        assert torch.equal(_shift(x, max_shift, new_gen), _old_shift(x, max_shift, old_gen))
        assert torch.equal(new_gen.get_state(), old_gen.get_state())  # the same draws: later ones unchanged


def test_kornia_box_blur_differs_from_the_augmentation_blur_at_the_border():
    """Why the 3×3 blur stays F.avg_pool2d(count_include_pad=False): no kornia border mode averages
    only the pixels inside the image. Interior pixels agree."""
    import kornia

    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ours = F.avg_pool2d(images, 3, 1, 1, count_include_pad=False)
    for border in ("constant", "reflect", "replicate", "circular"):
        theirs = kornia.filters.box_blur(images, 3, border_type=border)
        torch.testing.assert_close(theirs[..., 1:-1, 1:-1], ours[..., 1:-1, 1:-1], atol=1e-6, rtol=0)
        assert (theirs - ours).abs().max() > 0.01


# --- colour (dreamer.eval.metrics.contrast_background) ----------------------------------------------

def _old_contrast_background(rgb):
    luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return 0.0 if luminance >= 0.3 else 1.0


def test_luminance_matches_the_hand_written_rec709_sum():
    from dreamer.eval.metrics import luminance

    rgb = torch.rand(1000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    old = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in rgb.tolist()]
    torch.testing.assert_close(torch.tensor([luminance(tuple(c)) for c in rgb.tolist()], dtype=torch.float64),
                               torch.tensor(old, dtype=torch.float64), atol=1e-15, rtol=0)


def test_contrast_background_unchanged_for_library_and_random_colours():
    from dreamer.eval.metrics import contrast_background
    from dreamer.shapes import COLOURS

    colours = list(COLOURS.values()) + [tuple(c) for c in torch.rand(300, 3, generator=torch.Generator().manual_seed(1)).tolist()]
    assert [contrast_background(c) for c in colours] == [_old_contrast_background(c) for c in colours]
