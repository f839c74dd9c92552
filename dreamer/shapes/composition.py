"""Objects as unions of coloured, rigidly placed primitives.

A `Part` is a primitive, a rotation (degrees about X, then Y, then Z) and a translation, and a
colour role: `PRIMARY` (takes the prompt's colour) or the name of a fixed accent in
`colours.ACCENTS`. A `ShapeObject` is the union of its parts: the distance is the minimum over
parts and the colour is the colour of the nearest part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from dreamer.shapes.colours import ACCENTS, RGB
from dreamer.shapes.sdf_primitives import Primitive

PRIMARY = "primary"


def rotation_matrix(degrees: tuple[float, float, float]) -> torch.Tensor:
    """3x3 rotation: about X, then Y, then Z (R = Rz @ Ry @ Rx), float64."""
    ax, ay, az = (math.radians(d) for d in degrees)
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    return rz @ ry @ rx


@dataclass(frozen=True)
class Part:
    primitive: Primitive
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # where the local origin sits in the object
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # degrees about X, Y, Z (in that order)
    colour: str = PRIMARY  # PRIMARY or a key of ACCENTS
    _rot: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.colour != PRIMARY and self.colour not in ACCENTS:
            raise ValueError(f"part colour {self.colour!r} is neither {PRIMARY!r} nor an accent")
        if any(self.rotation):
            object.__setattr__(self, "_rot", rotation_matrix(self.rotation))

    def to_local(self, p: torch.Tensor) -> torch.Tensor:
        """Object-frame points [N, 3] -> this part's local frame."""
        local = p - torch.tensor(self.offset, dtype=p.dtype, device=p.device)
        if self._rot is not None:
            # Row vectors: local = R^T (p - t)  <=>  (p - t) @ R.
            local = local @ self._rot.to(dtype=p.dtype, device=p.device)
        return local

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return self.primitive.sdf(self.to_local(p))

    def rgb(self, primary: RGB) -> RGB:
        return primary if self.colour == PRIMARY else ACCENTS[self.colour]


@dataclass(frozen=True)
class ShapeObject:
    """A named object of the library: the union of `parts` in the canonical frame."""

    name: str
    parts: tuple[Part, ...]
    description: str = ""

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance [N] of points [N, 3]."""
        d = self.parts[0].sdf(p)
        for part in self.parts[1:]:
            d = torch.minimum(d, part.sdf(p))
        return d

    def sdf_and_colour(self, p: torch.Tensor, primary: RGB) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distance [N] and RGB [N, 3] of the nearest part, primary parts in `primary`."""
        dists = torch.stack([part.sdf(p) for part in self.parts], dim=0)  # [P, N]
        d, nearest = dists.min(dim=0)
        palette = torch.tensor([part.rgb(primary) for part in self.parts], dtype=p.dtype, device=p.device)
        return d, palette[nearest]
