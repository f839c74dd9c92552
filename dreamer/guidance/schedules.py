"""Timestep schedules and scalar schedules over training steps.

A timestep schedule is a small dataclass with `sample(step, batch, generator, device) -> t [B]`
(long). Bounds are fractions of the prior's `num_train_timesteps` T; a fraction f maps to the
timestep int(f·T), and every drawn t is clamped to [1, T−1]. Randomness comes only from the
passed CPU torch.Generator: draws happen on the CPU and the result is then moved to `device`.

`Schedule` is a scalar annealed over training (piecewise-linear in progress = step/total_steps,
constant outside its points): t bounds, gradient-clip values, ISM's δ_T, warm-ups. Its kinds:
`constant`, `linear` (a ramp between two fractions of training) and `hold_then_drop` (a step:
one value up to a fraction of training, another after it); `anneal(shape, …)` picks one by name
for the configs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    """A scalar, piecewise-linear in training progress p = step / total_steps ∈ [0, 1]."""

    points: tuple[tuple[float, float], ...]  # (progress, value) knots, progress increasing; constant outside

    def __post_init__(self) -> None:
        pts = tuple((float(p), float(v)) for p, v in self.points)
        if not pts:
            raise ValueError("a Schedule needs at least one (progress, value) point")
        if any(b[0] < a[0] for a, b in zip(pts, pts[1:])):
            raise ValueError(f"Schedule progress points must be non-decreasing, got {pts}")
        object.__setattr__(self, "points", pts)

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        """The same value at every step."""
        return cls(((0.0, value),))

    @classmethod
    def linear(cls, start: float, end: float, end_frac: float = 1.0, start_frac: float = 0.0) -> "Schedule":
        """`start` until start_frac, linear to `end` at end_frac, then `end`."""
        return cls(((start_frac, start), (end_frac, end)))

    @classmethod
    def hold_then_drop(cls, start: float, end: float, at_frac: float) -> "Schedule":
        """`start` while progress <= at_frac, then `end` (a step, not a ramp).

        threestudio's `[5000, 0.98, 0.5, 5001]` over 25,000 steps is hold_then_drop(0.98, 0.5, 0.2):
        0.98 up to and including step 5,000, 0.5 from step 5,001.
        """
        return cls(((0.0, start), (at_frac, start), (at_frac, end)))

    def at(self, progress: float) -> float:
        """The value at training progress p (clamped to the first/last knot)."""
        pts = self.points
        if progress <= pts[0][0]:
            return pts[0][1]
        for (p0, v0), (p1, v1) in zip(pts, pts[1:]):
            if progress <= p1:
                if p1 == p0:
                    return v1
                return v0 + (v1 - v0) * (progress - p0) / (p1 - p0)
        return pts[-1][1]

    def __call__(self, step: int, total_steps: int) -> float:
        """The value at `step` of `total_steps`."""
        return self.at(progress(step, total_steps))


def as_schedule(value: "float | Schedule") -> Schedule:
    """A float becomes a constant Schedule; a Schedule passes through."""
    return value if isinstance(value, Schedule) else Schedule.constant(float(value))


ANNEAL_SHAPES: tuple[str, ...] = ("linear", "hold_then_drop")


def anneal(shape: str, start: float, end: float, by_frac: float) -> Schedule:
    """A value moving from `start` to `end` by `by_frac` of training, in the named shape.

    "linear": falls (or rises) steadily from step 0 and reaches `end` at by_frac;
    "hold_then_drop": stays at `start` up to by_frac, then is `end`.
    """
    if shape == "linear":
        return Schedule.linear(start, end, by_frac)
    if shape == "hold_then_drop":
        return Schedule.hold_then_drop(start, end, by_frac)
    raise ValueError(f"unknown anneal shape {shape!r}; expected one of {ANNEAL_SHAPES}")


def progress(step: int, total_steps: int) -> float:
    """step / total_steps clamped to [0, 1]."""
    return min(max(step / max(total_steps, 1), 0.0), 1.0)


def _to_index(frac: float, num_train_timesteps: int) -> int:
    """A fraction of T as a timestep index, clamped to [1, T−1]."""
    return min(max(int(frac * num_train_timesteps), 1), num_train_timesteps - 1)


class TimestepSchedule:
    """Base of timestep schedules: draws t [B] (long) for a training step."""

    num_train_timesteps: int

    def bounds(self, step: int) -> tuple[int, int]:
        """(lowest, highest) timestep this schedule may return at `step`, inclusive."""
        raise NotImplementedError

    def sample(self, step: int, batch: int, generator: torch.Generator,
               device: torch.device | str | None = None) -> torch.Tensor:
        """t [batch] long on `device`, drawn with the CPU `generator`."""
        raise NotImplementedError


def _uniform_int(lo: int, hi: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """[batch] integers uniform on [lo, hi] inclusive (CPU)."""
    return torch.randint(lo, hi + 1, (batch,), generator=generator, dtype=torch.long)


@dataclass
class UniformTimesteps(TimestepSchedule):
    """t ~ U{int(min_frac·T) … int(max_frac·T)} at every step."""

    num_train_timesteps: int  # T of the prior
    min_frac: float = 0.02  # lower bound, fraction of T
    max_frac: float = 0.98  # upper bound, fraction of T

    def __post_init__(self) -> None:
        _check_fracs(self.min_frac, self.max_frac)

    def bounds(self, step: int) -> tuple[int, int]:
        T = self.num_train_timesteps
        return _to_index(self.min_frac, T), _to_index(self.max_frac, T)

    def sample(self, step: int, batch: int, generator: torch.Generator,
               device: torch.device | str | None = None) -> torch.Tensor:
        lo, hi = self.bounds(step)
        return _uniform_int(lo, hi, batch, generator).to(device)


@dataclass
class AnnealedTimesteps(TimestepSchedule):
    """t ~ U[min(step), max(step)] with each bound a piecewise-linear Schedule of progress.

    E.g. VSD: max = Schedule.linear(0.98, 0.5, end_frac=0.2), min = 0.02.
    """

    num_train_timesteps: int  # T of the prior
    total_steps: int  # training length the progress is measured against
    min_frac: Schedule | float = 0.02  # lower bound over training, fraction of T
    max_frac: Schedule | float = 0.98  # upper bound over training, fraction of T

    def __post_init__(self) -> None:
        self.min_frac = as_schedule(self.min_frac)
        self.max_frac = as_schedule(self.max_frac)

    def fractions(self, step: int) -> tuple[float, float]:
        """(min_frac, max_frac) at `step`."""
        lo = self.min_frac(step, self.total_steps)
        hi = self.max_frac(step, self.total_steps)
        _check_fracs(lo, hi)
        return lo, hi

    def bounds(self, step: int) -> tuple[int, int]:
        lo, hi = self.fractions(step)
        T = self.num_train_timesteps
        return _to_index(lo, T), _to_index(hi, T)

    def sample(self, step: int, batch: int, generator: torch.Generator,
               device: torch.device | str | None = None) -> torch.Tensor:
        lo, hi = self.bounds(step)
        return _uniform_int(lo, hi, batch, generator).to(device)


@dataclass
class SqrtAnnealTimesteps(TimestepSchedule):
    """Deterministic t = T·(min + (max − min)·(1 − √(step/total))), falling from max to min.

    With `jitter` > 0, uniform noise of ±jitter·T is added per sample (then clamped to
    [min, max]); with jitter = 0 the generator is not used.
    """

    num_train_timesteps: int  # T of the prior
    total_steps: int  # training length; t reaches min at this step
    min_frac: float = 0.02  # final t, fraction of T
    max_frac: float = 0.98  # initial t, fraction of T
    jitter: float = 0.0  # half-width of the per-sample uniform jitter, fraction of T

    def __post_init__(self) -> None:
        _check_fracs(self.min_frac, self.max_frac)
        if self.jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter}")

    def bounds(self, step: int) -> tuple[int, int]:
        T = self.num_train_timesteps
        return _to_index(self.min_frac, T), _to_index(self.max_frac, T)

    def center(self, step: int) -> float:
        """The un-jittered t at `step`, as a fraction of T."""
        r = progress(step, self.total_steps)
        return self.min_frac + (self.max_frac - self.min_frac) * (1.0 - math.sqrt(r))

    def sample(self, step: int, batch: int, generator: torch.Generator,
               device: torch.device | str | None = None) -> torch.Tensor:
        T = self.num_train_timesteps
        frac = torch.full((batch,), self.center(step), dtype=torch.float64)
        if self.jitter > 0:
            frac = frac + self.jitter * (2 * torch.rand(batch, generator=generator, dtype=torch.float64) - 1)
        lo, hi = self.bounds(step)
        t = (frac * T).round().long().clamp(lo, hi)
        return t.to(device)


@dataclass
class LinearDescendingTimesteps(TimestepSchedule):
    """Deterministic t = round((1 − (step + 1)/total)·T), clamped to [int(min·T), int(max·T)] (DreamGaussian).

    Every sample of the batch gets the same t and the generator is not used. `step + 1`: DreamGaussian
    counts a step before it computes its ratio (`self.step += 1; step_ratio = step / iters`), so its
    first step already has ratio 1/iters; with 500 steps and T = 1000, t is 980 (clamped from 998) at
    step 0, 500 at step 249 and 20 (clamped from 0) at the last step, 499.
    """

    num_train_timesteps: int  # T of the prior
    total_steps: int  # training length; t reaches its lowest value at the last step
    min_frac: float = 0.02  # lowest t, fraction of T (DreamGaussian's t_range[0])
    max_frac: float = 0.98  # highest t, fraction of T (DreamGaussian's t_range[1])

    def __post_init__(self) -> None:
        _check_fracs(self.min_frac, self.max_frac)

    def bounds(self, step: int) -> tuple[int, int]:
        t = self.timestep(step)
        return t, t

    def timestep(self, step: int) -> int:
        """The t every sample gets at `step`."""
        T = self.num_train_timesteps
        ratio = min((step + 1) / max(self.total_steps, 1), 1.0)
        t = round((1.0 - ratio) * T)  # round half to even, as numpy's np.round
        return min(max(t, _to_index(self.min_frac, T)), _to_index(self.max_frac, T))

    def sample(self, step: int, batch: int, generator: torch.Generator,
               device: torch.device | str | None = None) -> torch.Tensor:
        return torch.full((batch,), self.timestep(step), dtype=torch.long, device=device)


def _check_fracs(lo: float, hi: float) -> None:
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"timestep fractions need 0 <= min <= max <= 1, got min={lo}, max={hi}")
