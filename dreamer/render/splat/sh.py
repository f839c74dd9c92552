"""Real spherical harmonics up to degree 3, as 3D Gaussian splatting stores view-dependent colour.

A Gaussian's colour seen along the unit direction d (from the camera to the Gaussian) is
max(0, 0.5 + Σ_k c_k · Y_k(d)) with (degree + 1)² coefficients c_k per channel; degree 0 is a
constant colour. The constants and sign conventions are the ones of the 3DGS reference code and
gsplat (checked against gsplat's pure-PyTorch `_spherical_harmonics` in the tests), so
`splats.ply` files stay interchangeable with other splat tools.
"""

from __future__ import annotations

import torch

SH_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_coefficients(degree: int) -> int:
    if not 0 <= degree <= 3:
        raise ValueError(f"spherical-harmonics degree must be 0..3, got {degree}")
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """Y_k(d) for unit directions [..., 3] -> [..., (degree + 1)²]."""
    out = [torch.full_like(dirs[..., 0], SH_C0)]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [_C3[0] * y * (3 * xx - yy), _C3[1] * xy * z, _C3[2] * y * (4 * zz - xx - yy),
                _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy),
                _C3[5] * z * (xx - yy), _C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, dim=-1)


def sh_to_colour(coefficients: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Colours [..., 3] from coefficients [..., K, 3] (K ≥ (degree + 1)²) and unit directions [..., 3]."""
    k = num_coefficients(degree)
    basis = sh_basis(degree, dirs)  # [..., k]
    return (0.5 + (basis.unsqueeze(-1) * coefficients[..., :k, :]).sum(dim=-2)).clamp_min(0.0)


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """The degree-0 coefficient that shows colour `rgb` in [0, 1]."""
    return (rgb - 0.5) / SH_C0
