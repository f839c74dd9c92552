"""Project 3D Gaussians into pinhole cameras (EWA splatting), with gsplat's conventions.

For a Gaussian with mean μ, rotation R (a unit quaternion wxyz) and scales s:

    Σ      = R diag(s)² Rᵀ                                  3D covariance, world frame
    μ_c    = W μ + t,   Σ_c = W Σ Wᵀ                        camera frame (OpenCV: +Z forward, +Y down)
    μ_2d   = (f_x x/z + c_x,  f_y y/z + c_y)                pixel coordinates; pixel (i, j) has
                                                            its centre at (j + 0.5, i + 0.5)
    J      = [[f_x/z, 0, −f_x x'/z²], [0, f_y/z, −f_y y'/z²]]   Jacobian of the projection, with
             x'/z, y'/z clamped to 1.3 × the view frustum (stops far off-screen Gaussians blowing up)
    Σ_2d   = J Σ_c Jᵀ + eps2d · I                           eps2d: gsplat's 0.3 px² low-pass filter
    conic  = Σ_2d⁻¹ as (a, b, c): power(d) = ½(a dx² + c dy²) + b dx dy,  alpha = o · exp(−power)

The screen-space extent is gsplat's tight per-axis box (arXiv 2402.00525): r_x = ⌈k √Σ_2d[0,0]⌉,
r_y = ⌈k √Σ_2d[1,1]⌉ with k = 3.33, or, when opacities are given (as gsplat's CUDA path does),
k = min(3.33, √(2 ln(255 o))). Outside that box alpha < 1/255, the rasterizer's skip threshold, so a
tile rasterizer that only looks inside the box draws exactly what an all-pairs renderer draws.

A Gaussian is culled (radii 0) when its depth is not in (near, far), Σ_2d is not positive
definite, its opacity is below 1/255 (when given), or its box misses the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix

from dreamer.cameras import Camera
from dreamer.render.splat.composite import ALPHA_THRESHOLD

EPS2D = 0.3  # px², gsplat's screen-space low-pass: every splat's 2D covariance gets + EPS2D · I

FRUSTUM_MARGIN = 1.3  # the Jacobian sees x/z, y/z clamped to this multiple of the frustum
BOX_SIGMAS = 3.33  # exp(-3.33²/2) ≈ 1/255: the box holds every pixel that could pass the threshold

# OpenGL camera frame (−Z forward, +Y up) → OpenCV frame (+Z forward, +Y down): flip y and z.
_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


@dataclass
class Projection:
    """Gaussians seen by B cameras; entries of culled Gaussians are meaningless (radii 0)."""

    means2d: torch.Tensor  # [B, N, 2] pixel coordinates (x right, y down)
    conics: torch.Tensor  # [B, N, 3] inverse 2D covariance (a, b, c) = (Σ⁻¹₀₀, Σ⁻¹₀₁, Σ⁻¹₁₁)
    depths: torch.Tensor  # [B, N] camera-frame z
    radii: torch.Tensor  # [B, N, 2] int32 per-axis box half-sizes in pixels, 0 = culled
    covars2d: torch.Tensor  # [B, N, 2, 2] Σ_2d including eps2d
    in_depth_range: torch.Tensor  # [B, N] bool: near < z < far and Σ_2d positive definite

    @property
    def visible(self) -> torch.Tensor:  # [B, N] bool
        return (self.radii > 0).all(dim=-1)


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] from quaternions [..., 4] (w, x, y, z), normalised here.

    kornia's convention is gsplat's: real part first, normalised internally (the zero quaternion
    gives the identity)."""
    return quaternion_to_rotation_matrix(quats)


def quat_scale_to_covariance(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """3D covariances Σ = (R S)(R S)ᵀ [..., 3, 3] from quaternions [..., 4] and scales [..., 3]."""
    M = quat_to_rotmat(quats) * scales[..., None, :]  # [..., 3, 3] columns scaled: R S
    return M @ M.transpose(-1, -2)


def camera_to_opencv(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """(viewmats [B, 4, 4] world→camera in the OpenCV frame, intrinsics Ks [B, 3, 3])."""
    flip = _GL_TO_CV.to(device=camera.device, dtype=camera.c2w.dtype)
    return flip @ camera.w2c, camera.intrinsics


def project_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                      viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                      opacities: torch.Tensor | None = None, eps2d: float = EPS2D,
                      near: float = 0.01, far: float = 1e10) -> Projection:
    """Project N Gaussians (means [N, 3], quats [N, 4] wxyz, scales [N, 3] > 0) into B OpenCV
    cameras (viewmats [B, 4, 4] world→camera, Ks [B, 3, 3]); see the module docstring.

    With `opacities` [N] the box is opacity-aware and faint Gaussians are culled (gsplat CUDA);
    without them the box uses 3.33 σ (gsplat's pure-PyTorch `_fully_fused_projection`).
    """
    B, N = viewmats.shape[0], means.shape[0]
    rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [B, 3, 3], [B, 3]
    means_c = (rot @ means.T).transpose(1, 2) + trans[:, None, :]  # [B, N, 3]
    # Σ_2d = J W Σ Wᵀ Jᵀ = (J W R S)(J W R S)ᵀ: carry the factor P = W R S [B, N, 3, 3] instead of
    # Σ, computed for all Gaussians with one matrix product (batches of 3×3 products are slow).
    factor = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3] R S
    P = (rot @ factor.permute(1, 0, 2).reshape(3, N * 3)).view(B, 3, N, 3)  # P[b, i, n] = row i

    x, y, z = means_c.unbind(-1)  # [B, N]
    in_range = (z > near) & (z < far)
    # Culled Gaussians still flow through the math below; a safe z keeps their (unused) values
    # and gradients finite, where z = 0 would give inf · 0 = nan in the backward pass.
    z = torch.where(in_range, z, torch.ones_like(z))
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [B, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    # The Jacobian sees x/z, y/z clamped to the frustum widened by 30 % on each side (gsplat):
    # its half-extent past the principal point is side / f + 0.3 · tan(fov / 2).
    pad_x, pad_y = (FRUSTUM_MARGIN - 1) * 0.5 * width / fx, (FRUSTUM_MARGIN - 1) * 0.5 * height / fy
    u = (x / z).clamp(min=-(cx / fx + pad_x), max=(width - cx) / fx + pad_x)  # [B, N]
    v = (y / z).clamp(min=-(cy / fy + pad_y), max=(height - cy) / fy + pad_y)
    # J = [[fx/z, 0, −fx u/z], [0, fy/z, −fy v/z]], so the rows of J P are:
    row_x = (fx / z)[..., None] * (P[:, 0] - u[..., None] * P[:, 2])  # [B, N, 3]
    row_y = (fy / z)[..., None] * (P[:, 1] - v[..., None] * P[:, 2])
    a = (row_x * row_x).sum(-1) + eps2d  # [B, N] Σ_2d entries, with the low-pass filter
    b = (row_x * row_y).sum(-1)
    c = (row_y * row_y).sum(-1) + eps2d
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)  # [B, N, 2]

    det = a * c - b * b  # [B, N]
    in_range = in_range & (det > 0)
    inv_det = 1.0 / torch.where(in_range, det, torch.ones_like(det))
    conics = torch.stack([c * inv_det, -b * inv_det, a * inv_det], dim=-1)  # [B, N, 3]
    covars2d = torch.stack([a, b, b, c], dim=-1).view(B, N, 2, 2)

    radii = _screen_radii(means2d.detach(), covars2d.detach(), in_range, width, height, opacities)
    return Projection(means2d, conics, means_c[..., 2], radii, covars2d, in_range)


@torch.no_grad()
def _screen_radii(means2d: torch.Tensor, covars2d: torch.Tensor, in_range: torch.Tensor,
                  width: int, height: int, opacities: torch.Tensor | None) -> torch.Tensor:
    """Per-axis box half-sizes [B, N, 2] (int32), zero for culled Gaussians."""
    keep = in_range.clone()
    extend = torch.full_like(means2d[..., 0], BOX_SIGMAS)  # [B, N]
    if opacities is not None:
        o = opacities.detach().to(extend.dtype).expand_as(extend)
        keep &= o >= ALPHA_THRESHOLD
        # Beyond √(2 ln(o/threshold)) σ even the peak o·exp(−power) is under the threshold.
        peak_ratio = o.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD
        extend = torch.minimum(extend, torch.sqrt(2.0 * torch.log(peak_ratio)))
    var = torch.diagonal(covars2d, dim1=-2, dim2=-1).clamp_min(0)  # [B, N, 2]
    radii = torch.ceil(extend[..., None] * var.sqrt())  # [B, N, 2]
    keep &= (radii > 0).all(dim=-1)
    x, y = means2d.unbind(-1)
    rx, ry = radii.unbind(-1)
    keep &= (x + rx > 0) & (x - rx < width) & (y + ry > 0) & (y - ry < height)
    return torch.where(keep[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
