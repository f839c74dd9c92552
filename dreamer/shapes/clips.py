"""Clips of the animated shape library for training video models: rendered once, drawn at any phase.

Shared by the `tiny-motion` prior's training data (dreamer.priors.tiny_motion.data) and the motion
evaluator's training (dreamer.eval.motion_classifier), which sit in different layers above this one.

A bank row is one view of one moving object (one camera, one colour) at `phases` loop times j / phases,
rendered over black with its coverage (premultiplied colour + alpha, uint8); a clip of F frames is F of a
row's frames from a start phase, one loop long, composited over a background by its user
(dreamer.shapes.views.composite), so background variety costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from dreamer.shapes import views as shape_views
from dreamer.shapes.motions import MotionSpec
from dreamer.shapes.spec import ObjectSpec

STILL = "still"  # the motion of an object standing still


@dataclass
class ClipBank:
    """Rendered views of moving objects: each row one view of one (shape, motion) at `phases` loop times."""

    premultiplied: torch.Tensor  # [N, P, 3, S, S] uint8, colour over black
    alpha: torch.Tensor  # [N, P, 1, S, S] uint8 coverage
    cameras: torch.Tensor  # [N, 3] azimuth°, elevation°, distance
    specs: list[ObjectSpec]  # [N] the object (shape, colour) of each row
    motions: list[str]  # [N] its motion

    def __len__(self) -> int:
        return len(self.specs)


def render_clip_bank(pairs: list[tuple[str, str]], colours_of: Callable[[str, str], list[str]], views_per_pair: int,
                     phases: int, views: shape_views.ViewConfig, gen: torch.Generator,
                     progress: Callable[[int, int], None] | None = None) -> ClipBank:
    """Every (shape, motion) of `pairs` from `views_per_pair` random cameras (`views`' ranges), each view in a
    colour drawn from `colours_of(shape, motion)`, at the loop times j / phases; all draws from `gen`."""
    from dreamer.cameras import clip_cameras, from_spherical
    from dreamer.shapes.animated import render_motion

    times = torch.arange(phases, dtype=torch.float32) / phases  # [P]
    premult, alpha, cameras, specs, motions = [], [], [], [], []
    for done, (shape, motion) in enumerate(pairs):
        colours = colours_of(shape, motion)
        sph = shape_views.sample_cameras(views_per_pair, views, gen)  # [V, 3]
        picks = torch.randint(len(colours), (views_per_pair,), generator=gen).tolist()
        size = views.image_size
        cams = from_spherical(sph[:, 0], sph[:, 1], sph[:, 2], views.fovy, size, size)
        rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for pick in sorted(set(picks)):  # the views of one colour render together
            index = [v for v, p in enumerate(picks) if p == pick]
            spec = ObjectSpec(shape, colours[pick])
            still = motion == STILL
            clip = clip_cameras(cams[index], times[:1] if still else times)  # view-major, P (or 1) each
            out = render_motion(MotionSpec(spec, motion if not still else "still"), clip, (0.0, 0.0, 0.0),
                                views.supersample)
            per_view = (len(index), -1, *out.rgb.shape[1:])
            rgb, cover = out.rgb.reshape(per_view), out.alpha.reshape(per_view[:-1] + (1,))
            rgb, cover = rgb.permute(0, 1, 4, 2, 3), cover.permute(0, 1, 4, 2, 3)  # [n, P or 1, C, S, S]
            if still:
                rgb, cover = rgb.expand(-1, phases, -1, -1, -1), cover.expand(-1, phases, -1, -1, -1)
            for k, v in enumerate(index):
                rows[v] = (_to_uint8(rgb[k]), _to_uint8(cover[k]))
        for v, pick in enumerate(picks):
            premult.append(rows[v][0])
            alpha.append(rows[v][1])
            specs.append(ObjectSpec(shape, colours[pick]))
            motions.append(motion)
        cameras.append(sph)
        if progress is not None:
            progress(done + 1, len(pairs))
    return ClipBank(torch.stack(premult), torch.stack(alpha), torch.cat(cameras), specs, motions)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def clip_frames(bank: ClipBank, rows: torch.Tensor, start: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(premultiplied [B, F, 3, S, S], alpha [B, F, 1, S, S]) in [0, 1]: F frames of each row, one loop from its
    start phase index `start` [B] (frame f is the row's frame (start + f · P/F) mod P)."""
    phases = bank.premultiplied.shape[1]
    index = (start[:, None] + (phases // frames) * torch.arange(frames)[None]) % phases  # [B, F]
    return bank.premultiplied[rows[:, None], index].float() / 255.0, bank.alpha[rows[:, None], index].float() / 255.0
