"""Random views of library objects for training image models: cameras, coverage renders, backgrounds.

Shared by the tiny prior's training data (dreamer.priors.tiny.data) and the evaluator classifier's
training (dreamer.eval.classifier_train), which sit in different layers above this one.

Objects are rendered once over black with their coverage (premultiplied colour + alpha) and
composited over a fresh background every time they are drawn: a solid colour (white, mid grey or
black for `background_neutral` of them, else a uniform random RGB; never one too close to the
object's own colour) or a vertical gradient between two random colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import from_spherical
from dreamer.shapes.spec import ObjectSpec

_NEUTRALS = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])  # white, grey, black
MIN_CONTRAST = 0.35  # least RGB distance between a solid background and the object's albedo


@dataclass
class ViewConfig:
    """Where random views are taken from and what they are composited over."""

    image_size: int = 32  # side of the images, pixels
    supersample: int = 2  # per-axis supersampling of renders (antialiased edges; cost × ss²)
    azimuth: tuple[float, float] = (0.0, 360.0)  # camera azimuth range, degrees (0 = front, +Z)
    elevation: tuple[float, float] = (-15.0, 60.0)  # camera elevation range, degrees
    distance: tuple[float, float] = (2.4, 3.2)  # camera distance range
    fovy: float = 42.5  # vertical field of view, degrees
    background_solid: float = 0.5  # share of solid backgrounds (the rest are vertical gradients)
    background_neutral: float = 0.5  # share of solid backgrounds that are white / grey / black
    seed: int = 0  # camera seed


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=generator)


def sample_cameras(n: int, config: ViewConfig, generator: torch.Generator) -> torch.Tensor:
    """[n, 3] azimuth°, elevation°, distance drawn uniformly in the config's ranges."""
    return torch.stack([_uniform(n, config.azimuth, generator), _uniform(n, config.elevation, generator),
                        _uniform(n, config.distance, generator)], dim=-1)


def render_premultiplied(spec: ObjectSpec, cameras: torch.Tensor, config: ViewConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Renders over black of `spec` from cameras [n, 3]: (premultiplied rgb [n,3,S,S], alpha [n,1,S,S])."""
    from dreamer.shapes.raytrace import render_spec

    size = config.image_size
    cams = from_spherical(cameras[:, 0], cameras[:, 1], cameras[:, 2], config.fovy, size, size)
    out = render_spec(spec, cams, background=(0.0, 0.0, 0.0), supersample=config.supersample)
    return out.rgb.permute(0, 3, 1, 2).contiguous(), out.alpha.permute(0, 3, 1, 2).contiguous()


def random_backgrounds(n: int, size: int, config: ViewConfig, generator: torch.Generator,
                       object_rgb: torch.Tensor | None = None) -> torch.Tensor:
    """[n, 3, S, 1] backgrounds (constant along rows; broadcast over columns): solid (neutral or
    random RGB) or vertical two-colour gradients.

    A solid background closer than `MIN_CONTRAST` (RGB distance) to its object's albedo
    `object_rgb` [n, 3] is replaced by the neutral farthest from it, so a black object never
    sits on black, nor a grey one on grey.
    """
    top = torch.rand(n, 3, generator=generator)
    bottom = torch.rand(n, 3, generator=generator)
    solid = torch.rand(n, generator=generator) < config.background_solid
    neutral = torch.rand(n, generator=generator) < config.background_neutral
    which = torch.randint(len(_NEUTRALS), (n,), generator=generator)
    top = torch.where((solid & neutral)[:, None], _NEUTRALS[which], top)
    if object_rgb is not None:
        too_close = solid & ((top - object_rgb).norm(dim=-1) < MIN_CONTRAST)
        farthest = _NEUTRALS[torch.cdist(object_rgb, _NEUTRALS).argmax(dim=-1)]  # [n, 3]
        top = torch.where(too_close[:, None], farthest, top)
    bottom = torch.where(solid[:, None], top, bottom)
    ramp = torch.linspace(0.0, 1.0, size).reshape(1, 1, size, 1)  # 0 at the top row
    return top[:, :, None, None] * (1 - ramp) + bottom[:, :, None, None] * ramp  # [n, 3, S, 1]


def composite(premultiplied: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Over-operator: rgb = c + (1 − a)·bg, broadcast to [B, 3, S, S], clamped to [0, 1]."""
    return (premultiplied + (1.0 - alpha) * background).clamp(0.0, 1.0)
