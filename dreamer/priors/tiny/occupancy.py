"""The 3D loss of the lifted prior (`tiny-3d`): its volume against the library object's own occupancy.

The x̂0 loss sees an object only through 32 px views, where a chair's leg (0.05 world units) is under a
pixel wide; the volume that prior learnt from it alone was two to three times too thick in every thin part
(bench/thin_parts.py: the chair's predicted volume scores volume IoU 0.26–0.29 against the 0.57 its 24³
grid can hold). The training views are renders of library objects whose geometry is known, so the volume
can be told directly where the object is: each voxel's opacity across its own length
(`LiftedDenoiser.voxel_opacity`) is fitted by binary cross-entropy to the share of that voxel the object
fills. The occupancy depends only on the shape (objects sit in the library's canonical pose), so it is the
same target at every t and for every camera and colour; it is computed once per shape.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dreamer.shapes.spec import ObjectSpec, sdf_and_colour


def voxel_occupancy(spec: ObjectSpec, centres: torch.Tensor, spacing: float) -> torch.Tensor:
    """[G, G, G] share of each voxel (centres [G, G, G, 3], side `spacing`) inside the object: a linear ramp of
    the signed distance across one voxel (1 deep inside, 0 well outside, 0.5 on the surface)."""
    sdf, _ = sdf_and_colour(spec, centres.reshape(-1, 3))
    return (0.5 - sdf.reshape(centres.shape[:-1]) / spacing).clamp(0.0, 1.0)


class OccupancyTargets:
    """Voxel occupancies of library shapes on one grid, computed once per shape."""

    def __init__(self, centres: torch.Tensor, spacing: float) -> None:
        self.centres, self.spacing = centres, spacing
        self._by_shape: dict[str, torch.Tensor] = {}

    def __call__(self, specs: list[ObjectSpec]) -> torch.Tensor:
        """[N, G, G, G] targets of N objects."""
        for spec in specs:
            if spec.shape not in self._by_shape:
                self._by_shape[spec.shape] = voxel_occupancy(spec, self.centres, self.spacing)
        return torch.stack([self._by_shape[s.shape] for s in specs])


def occupancy_loss(opacity: torch.Tensor, target: torch.Tensor, skip_surface: bool = False) -> torch.Tensor:
    """Mean binary cross-entropy of voxel opacities [N, G, G, G] against occupancies of the same shape.

    With `skip_surface`, only the voxels wholly inside (1) or outside (0) count. A voxel the surface crosses
    is partly filled, but a thin part that fills half of it is still opaque seen face-on: fitting its opacity
    to 0.5 teaches the prior that tabletops and handles are translucent (tuning runs: a faint tabletop, a
    faint handle). Those voxels are left to the x̂0 loss, which sees how opaque they render."""
    per_voxel = F.binary_cross_entropy(opacity.clamp(1e-4, 1 - 1e-4), target.to(opacity), reduction="none")
    if not skip_surface:
        return per_voxel.mean()
    whole = ((target <= 0) | (target >= 1)).to(per_voxel)
    return (per_voxel * whole).sum() / whole.sum().clamp_min(1.0)
