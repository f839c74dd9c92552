"""Batched signed distance functions of primitive solids in their local frame.

Every primitive maps points [N, 3] to signed distances [N] (negative inside). Axis-symmetric
primitives use +Y as their axis and are centred at the origin. Some are exact distances, some
(marked "bound") are only lower bounds of the distance outside — still safe for sphere tracing
because they never overstep the surface, just converge a little slower near edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class Primitive:
    """A solid with a signed distance function in its local frame."""

    def sdf(self, p: torch.Tensor) -> torch.Tensor:  # [N, 3] -> [N]
        raise NotImplementedError


def _radial(p: torch.Tensor) -> torch.Tensor:
    """Distance from the local Y axis."""
    return torch.hypot(p[:, 0], p[:, 2])


def _box2(dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Signed distance from per-axis excess distances (the box SDF pattern, 2D)."""
    outside = torch.hypot(dx.clamp_min(0), dy.clamp_min(0))
    inside = torch.maximum(dx, dy).clamp_max(0)
    return outside + inside


@dataclass(frozen=True)
class Sphere(Primitive):
    radius: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return p.norm(dim=-1) - self.radius


@dataclass(frozen=True)
class Box(Primitive):
    """Axis-aligned box with half extents `half`; `rounding` rounds its edges (exact)."""

    half: tuple[float, float, float]
    rounding: float = 0.0

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        half = torch.tensor(self.half, dtype=p.dtype, device=p.device) - self.rounding
        q = p.abs() - half
        outside = q.clamp_min(0).norm(dim=-1)
        inside = q.max(dim=-1).values.clamp_max(0)
        return outside + inside - self.rounding


@dataclass(frozen=True)
class Cylinder(Primitive):
    """Solid cylinder around Y, from y = -half_height to +half_height (exact)."""

    radius: float
    half_height: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return _box2(_radial(p) - self.radius, p[:, 1].abs() - self.half_height)


@dataclass(frozen=True)
class Frustum(Primitive):
    """Truncated cone around Y: radius `bottom` at y = -h, `top` at y = +h (exact).

    The distance is the smaller of the distance to the nearer flat cap and to the slanted side
    segment, worked in the 2D (radial, y) half-plane.
    """

    bottom: float
    top: float
    half_height: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        r, y, h = _radial(p), p[:, 1], self.half_height
        # Offset to the nearer cap disc (top for y >= 0, bottom otherwise).
        cap_radius = torch.where(y < 0, torch.full_like(r, self.bottom), torch.full_like(r, self.top))
        cap_r = r - torch.minimum(r, cap_radius)
        cap_y = y.abs() - h
        # Offset to the closest point on the side segment from the top rim (top, h) to the
        # bottom rim (bottom, -h).
        er, ey = self.top - self.bottom, 2 * h  # segment direction, bottom rim -> top rim
        t = (((self.top - r) * er + (h - y) * ey) / (er * er + ey * ey)).clamp(0, 1)
        side_r = r - self.top + er * t
        side_y = y - h + ey * t
        inside = (side_r < 0) & (cap_y < 0)
        dist2 = torch.minimum(cap_r * cap_r + cap_y * cap_y, side_r * side_r + side_y * side_y)
        return torch.where(inside, -1.0, 1.0) * dist2.sqrt()


def Cone(radius: float, half_height: float) -> Frustum:
    """Cone around Y: base of `radius` at y = -half_height, apex at +half_height."""
    return Frustum(radius, 0.0, half_height)


@dataclass(frozen=True)
class Torus(Primitive):
    """Ring lying in the XZ plane (exact)."""

    major: float
    minor: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return torch.hypot(_radial(p) - self.major, p[:, 1]) - self.minor


@dataclass(frozen=True)
class Capsule(Primitive):
    """Segment from y = -half_height to +half_height, thickened by `radius` (exact)."""

    radius: float
    half_height: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        y = p[:, 1] - p[:, 1].clamp(-self.half_height, self.half_height)
        return torch.stack([p[:, 0], y, p[:, 2]], dim=-1).norm(dim=-1) - self.radius


@dataclass(frozen=True)
class Ellipsoid(Primitive):
    """Axis-aligned ellipsoid with semi-axes `radii` (bound: scaled-sphere distance)."""

    radii: tuple[float, float, float]

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        radii = torch.tensor(self.radii, dtype=p.dtype, device=p.device)
        # |p / radii| is (1 / min radius)-Lipschitz, so rescaling by the min radius keeps a bound.
        return ((p / radii).norm(dim=-1) - 1.0) * min(self.radii)


@dataclass(frozen=True)
class Dome(Primitive):
    """Upper half (y >= 0) of an ellipsoid: a mushroom cap or a dome (bound)."""

    radii: tuple[float, float, float]

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return torch.maximum(Ellipsoid(self.radii).sdf(p), -p[:, 1])


def _slanted(offset: torch.Tensor, y: torch.Tensor, half_width: float, half_height: float) -> torch.Tensor:
    """Signed distance to the plane through (half_width, -h) and (0, +h) in the (offset, y) plane."""
    h, w = half_height, half_width
    return (2 * h * offset + w * y - w * h) / ((2 * h) ** 2 + w * w) ** 0.5


@dataclass(frozen=True)
class Pyramid(Primitive):
    """Square pyramid: base of half width `half_base` at y = -h, apex at y = +h (bound)."""

    half_base: float
    half_height: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        b, h, y = self.half_base, self.half_height, p[:, 1]
        sides = torch.maximum(_slanted(p[:, 0].abs(), y, b, h), _slanted(p[:, 2].abs(), y, b, h))
        return torch.maximum(sides, -y - h)


@dataclass(frozen=True)
class Gable(Primitive):
    """Triangular prism (a pitched roof): triangle in YZ with base half width `half_width` at
    y = -h and ridge at y = +h, extruded along X over +-`half_length` (bound)."""

    half_width: float
    half_height: float
    half_length: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        w, h, y = self.half_width, self.half_height, p[:, 1]
        d = torch.maximum(_slanted(p[:, 2].abs(), y, w, h), -y - h)
        return torch.maximum(d, p[:, 0].abs() - self.half_length)


@dataclass(frozen=True)
class Cup(Primitive):
    """Cylinder around Y with a hollow open at the top: walls and floor `wall` thick (bound)."""

    radius: float
    half_height: float
    wall: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        outer = Cylinder(self.radius, self.half_height).sdf(p)
        # The hollow: inside the inner radius and above the floor, open through the top.
        hollow = torch.maximum(_radial(p) - (self.radius - self.wall), -self.half_height + self.wall - p[:, 1])
        return torch.maximum(outer, -hollow)


@dataclass(frozen=True)
class Clipped(Primitive):
    """`shape` keeping only the points whose local coordinate `axis` is >= `minimum` (bound)."""

    shape: Primitive
    axis: int
    minimum: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        return torch.maximum(self.shape.sdf(p), self.minimum - p[:, self.axis])
