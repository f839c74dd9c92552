"""The animated shape library: a library object moved by an analytic, looping motion.

A motion is a similarity transform of the static object for each time τ in [0, 1) (one loop):

    p_world = pivot + translation(τ) + scale(τ) · R(τ) · (p_canonical − pivot)

so the moving object's SDF is  sdf_world(p) = scale · sdf_canonical(M(τ)⁻¹ p)  and its colour is the
canonical colour at M(τ)⁻¹ p. Every motion is the identity at τ = 0 except `orbiting` (which starts
on the front of its circle) and loops exactly: M(0) = M(1). Amplitudes keep every library object
(inside a sphere of radius 0.6) within the [−1, 1]³ cube.

| motion    | what moves                                                        |
|-----------|-------------------------------------------------------------------|
| spinning  | one turn about the vertical (+Y) axis per loop                    |
| bouncing  | a parabolic hop of 0.3 up from its resting height, back at τ = 1  |
| sliding   | left and right along X, ±0.3                                      |
| swaying   | rocking ±15° about the front (+Z) axis through its base           |
| pulsing   | scaling in and out, ×(1 ± 0.2)                                    |
| orbiting  | its centre goes round a circle of radius 0.3 in the ground plane  |
| still     | nothing (a static object in a 4D run)                             |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from dreamer.errors import UserError
from dreamer.shapes.spec import ObjectSpec, with_article

AMPLITUDE = 0.3  # bounce height, slide half-width, orbit radius (world units)
SWAY_DEGREES = 15.0  # swaying: largest tilt
PULSE = 0.2  # pulsing: scale 1 ± PULSE
GROUND = -0.6  # the pivot height of swaying (the bottom of the 0.6-radius library sphere)


@dataclass(frozen=True)
class Pose:
    """A batch of similarity transforms p ↦ pivot + translation + scale · R (p − pivot)."""

    rotation: torch.Tensor  # [N, 3, 3]
    translation: torch.Tensor  # [N, 3]
    scale: torch.Tensor  # [N]
    pivot: torch.Tensor  # [3]

    def matrix(self) -> torch.Tensor:
        """[N, 4, 4] homogeneous canonical-to-world matrices."""
        n = self.rotation.shape[0]
        m = torch.eye(4, dtype=self.rotation.dtype).repeat(n, 1, 1)
        linear = self.scale[:, None, None] * self.rotation
        m[:, :3, :3] = linear
        m[:, :3, 3] = self.pivot + self.translation - (linear @ self.pivot)
        return m

    def to_world(self, points: torch.Tensor, index: int = 0) -> torch.Tensor:
        """Canonical points [P, 3] -> world points [P, 3] under pose `index`."""
        r, s = self.rotation[index].to(points), self.scale[index].to(points)
        pivot = self.pivot.to(points)
        return pivot + self.translation[index].to(points) + s * (points - pivot) @ r.T

    def to_canonical(self, points: torch.Tensor, index: int = 0) -> torch.Tensor:
        """World points [P, 3] -> canonical points [P, 3] under pose `index` (the inverse of `to_world`)."""
        r, s = self.rotation[index].to(points), self.scale[index].to(points)
        pivot = self.pivot.to(points)
        return pivot + ((points - pivot - self.translation[index].to(points)) @ r) / s


def _rotation(axis: str, degrees: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] right-handed rotations about the x, y or z axis."""
    a = torch.deg2rad(degrees.double())
    c, s = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2).float()


@dataclass(frozen=True)
class Motion:
    """A named looping motion: `pose(times)` gives the transform of the object at each time."""

    name: str
    description: str
    _pose: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def pose(self, times) -> Pose:
        """Pose at `times` (a float or [N] values; wrapped into [0, 1))."""
        tau = torch.remainder(torch.as_tensor(times, dtype=torch.float32).reshape(-1).cpu(), 1.0)
        rotation, translation, scale = self._pose(tau)
        return Pose(rotation, translation, scale, torch.tensor(self.pivot))


def _still(tau):
    n = len(tau)
    return torch.eye(3).repeat(n, 1, 1), torch.zeros(n, 3), torch.ones(n)


def _spinning(tau):
    _, t, s = _still(tau)
    return _rotation("y", 360.0 * tau), t, s


def _bouncing(tau):
    r, t, s = _still(tau)
    t[:, 1] = 4.0 * AMPLITUDE * tau * (1.0 - tau)
    return r, t, s


def _sliding(tau):
    r, t, s = _still(tau)
    t[:, 0] = AMPLITUDE * torch.sin(2 * math.pi * tau)
    return r, t, s


def _swaying(tau):
    _, t, s = _still(tau)
    return _rotation("z", SWAY_DEGREES * torch.sin(2 * math.pi * tau)), t, s


def _pulsing(tau):
    r, t, _ = _still(tau)
    return r, t, 1.0 + PULSE * torch.sin(2 * math.pi * tau)


def _orbiting(tau):
    r, t, s = _still(tau)
    t[:, 0] = AMPLITUDE * torch.sin(2 * math.pi * tau)
    t[:, 2] = AMPLITUDE * torch.cos(2 * math.pi * tau)
    return r, t, s


MOTIONS: dict[str, Motion] = {m.name: m for m in (
    Motion("spinning", "one turn about the vertical axis per loop", _spinning),
    Motion("bouncing", f"a parabolic hop {AMPLITUDE} high", _bouncing),
    Motion("sliding", f"left and right, ±{AMPLITUDE}", _sliding),
    Motion("swaying", f"rocking ±{SWAY_DEGREES:.0f}° about the front axis through its base", _swaying,
           pivot=(0.0, GROUND, 0.0)),
    Motion("pulsing", f"scaling in and out, ×(1 ± {PULSE})", _pulsing),
    Motion("orbiting", f"round a circle of radius {AMPLITUDE} in the ground plane", _orbiting),
)}
STILL = Motion("still", "no motion", _still)

# Words the parser accepts for a motion (verb forms and synonyms), mapped to its name.
MOTION_WORDS: dict[str, str] = {
    **{w: "spinning" for w in ("spinning", "spins", "spin", "rotating", "rotates", "rotate", "turning", "turns",
                                "twirling", "twirls")},
    **{w: "bouncing" for w in ("bouncing", "bounces", "bounce", "hopping", "hops", "hop", "jumping", "jumps",
                                "jump")},
    **{w: "sliding" for w in ("sliding", "slides", "slide", "gliding", "glides", "shuffling")},
    **{w: "swaying" for w in ("swaying", "sways", "sway", "rocking", "rocks", "rock", "wobbling", "wobbles",
                               "tilting", "tilts")},
    **{w: "pulsing" for w in ("pulsing", "pulses", "pulse", "pulsating", "pulsates", "throbbing", "throbs",
                               "breathing", "breathes")},
    **{w: "orbiting" for w in ("orbiting", "orbits", "orbit", "circling", "circles")},
}


def canonical_motion(word: str) -> str | None:
    """The MOTIONS key for a motion word or synonym (case-insensitive), or None."""
    return MOTION_WORDS.get(word.strip().lower())


def motion_vocabulary() -> str:
    """'known motions are ...' for error messages."""
    return f"known motions are {', '.join(MOTIONS)}"


@dataclass(frozen=True)
class MotionSpec:
    """A library object in a named colour, moving by a named motion ("still" for none)."""

    spec: ObjectSpec
    motion: str = "still"

    def __post_init__(self) -> None:
        if self.motion != "still":
            name = canonical_motion(self.motion)
            if name is None:
                raise UserError(f"unknown motion {self.motion!r}: {motion_vocabulary()}")
            object.__setattr__(self, "motion", name)

    @property
    def prompt(self) -> str:
        base = with_article(f"{self.spec.colour} {self.spec.shape}")
        return base if self.motion == "still" else f"{base} {self.motion}"

    @property
    def dynamics(self) -> Motion:
        return MOTIONS.get(self.motion, STILL)

    def pose(self, times) -> Pose:
        return self.dynamics.pose(times)

    def sdf_and_colour(self, points: torch.Tensor, time: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distance [N] and albedo [N, 3] of world points [N, 3] at one time."""
        pose = self.pose(time)
        d, rgb = self.spec.object.sdf_and_colour(pose.to_canonical(points), self.spec.rgb)
        return d * pose.scale[0].to(d), rgb

    def sdf(self, time: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """The world SDF at one time, as a function of points [N, 3]."""
        pose = self.pose(time)
        obj = self.spec.object
        return lambda p: obj.sdf(pose.to_canonical(p)) * pose.scale[0].to(p)
