"""The exact priors' cameras: the fixed reference orbit and the camera weighting of references.

References are rendered on a deterministic golden spiral (`reference_orbit`); a set stores each
image's camera as a unit direction from the origin (`camera_directions`), and a query camera weights
reference i by exp(−angle(query, cam_i)² / (2τ²)) (`camera_log_weights`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from dreamer.cameras import Camera, from_spherical

if TYPE_CHECKING:
    from dreamer.priors.reference_config import ReferencePriorConfig

__all__ = ["reference_orbit", "camera_directions", "camera_log_weights"]

_GOLDEN_ANGLE = 180.0 * (3.0 - math.sqrt(5.0))  # degrees, ≈ 137.508


def reference_orbit(num_views: int, config: ReferencePriorConfig) -> Camera:
    """`num_views` cameras on a golden spiral over the elevation band, every azimuth, deterministic.

    Elevations are spaced uniformly in sin(elevation) (equal solid angle per camera); azimuths
    advance by the golden angle from 0 (the front). Distance and fovy are fixed.
    """
    i = torch.arange(num_views, dtype=torch.float64)
    lo, hi = (math.sin(math.radians(e)) for e in config.elevation)
    elevation = torch.rad2deg(torch.asin(lo + (hi - lo) * (i + 0.5) / num_views))
    azimuth = (i * _GOLDEN_ANGLE) % 360.0
    size = config.image_size
    return from_spherical(azimuth.float(), elevation.float(), config.distance, config.fovy, size, size)


def camera_directions(camera: Camera) -> torch.Tensor:
    """[B, 3] unit vectors from the origin to the cameras (what reference sets store per image)."""
    return F.normalize(camera.position.float(), dim=-1)


def camera_log_weights(query_dirs: torch.Tensor, ref_dirs: torch.Tensor, temperature_deg: float) -> torch.Tensor:
    """log w = −angle(query, ref)² / (2τ²), angles in degrees: [B, 3] × [N, 3] unit vectors -> [B, N] float64."""
    cos = (query_dirs.double() @ ref_dirs.double().T).clamp(-1.0, 1.0)
    return -torch.rad2deg(torch.acos(cos)) ** 2 / (2.0 * float(temperature_deg) ** 2)
