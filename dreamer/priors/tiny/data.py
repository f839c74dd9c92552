"""Training data of the `tiny` prior: shape-library views with captions, cameras and backgrounds.

A training example is (image [3, S, S] in [0, 1], caption, camera (azimuth°, elevation°,
distance)). Objects are rendered once over black with their coverage (premultiplied colour +
alpha) and composited over a fresh background every time they are drawn, so background variety
costs nothing: a solid colour (white, mid grey or black for `background_neutral` of them, else a
uniform random RGB; never one too close to the object's own colour) or a vertical gradient
between two random colours. Random backgrounds keep
white and black objects visible and stop the model from learning "object = not white".

Two sources with the same batches' distribution (`TinyDataConfig.source`):

* "bank" — a `ViewBank` of `views_per_combo` seeded random views per training combination,
  rendered once and cached on disk (dreamer.priors.tiny.views); batches draw from it;
* "live" — every example rendered on the fly from a fresh random camera (slower; the obvious
  twin of the bank, and unbounded view variety).

Held-out combinations (captions.HELD_OUT) are excluded from both sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.priors.tiny.captions import Caption, captions_for, pick_caption, split_combos
from dreamer.shapes import OBJECTS, ObjectSpec

_NEUTRALS = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])  # white, grey, black
MIN_CONTRAST = 0.35  # least RGB distance between a solid background and the object's albedo


@dataclass
class TinyDataConfig:
    """What the tiny prior is trained on."""

    image_size: int = 32  # side of the training images, pixels (the model's resolution)
    supersample: int = 2  # per-axis supersampling of renders (antialiased edges; cost × ss²)
    source: Literal["bank", "live"] = "bank"  # pre-rendered cached views, or render every example
    views_per_combo: int = 128  # bank: random views rendered per training colour × shape combination
    azimuth: tuple[float, float] = (0.0, 360.0)  # camera azimuth range, degrees (0 = front, +Z)
    elevation: tuple[float, float] = (-15.0, 60.0)  # camera elevation range, degrees
    distance: tuple[float, float] = (2.4, 3.2)  # camera distance range (OrbitConfig's 2.6–3.0, widened)
    fovy: float = 42.5  # vertical field of view, degrees (fixed: the camera embedding does not carry it)
    shapes: tuple[str, ...] | None = None  # library shapes to use; None = all
    colours: tuple[str, ...] | None = None  # colours to use; None = all
    focus_shapes: tuple[str, ...] = ()  # shapes drawn `focus_weight` times as often as the others
    focus_weight: float = 1.0  # how much more often a focus shape is drawn (1 = uniform over the examples)
    background_solid: float = 0.5  # share of solid backgrounds (the rest are vertical gradients)
    background_neutral: float = 0.5  # share of solid backgrounds that are white / grey / black
    parseable_share: float = 0.5  # share of captions from parseable templates (the rest paraphrases)
    seed: int = 0  # data seed: the bank's cameras (batches are drawn from the training generator)

    def __post_init__(self) -> None:
        for name in ("azimuth", "elevation", "distance", "shapes", "colours", "focus_shapes"):
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))
        if self.image_size < 8 or self.image_size % 8:
            raise UserError(f"tiny data: image_size must be a multiple of 8, got {self.image_size}")
        if self.source not in ("bank", "live"):
            raise UserError(f"tiny data: source must be 'bank' or 'live', got {self.source!r}")
        if self.views_per_combo < 1 or self.supersample < 1:
            raise UserError("tiny data: views_per_combo and supersample must be positive")
        for name in ("background_solid", "background_neutral", "parseable_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"tiny data: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.focus_weight <= 0:
            raise UserError(f"tiny data: focus_weight must be > 0, got {self.focus_weight}")
        unknown = sorted(set(self.focus_shapes) - set(OBJECTS))
        if unknown:
            raise UserError(f"tiny data: unknown focus shape(s) {', '.join(unknown)}; known: {', '.join(OBJECTS)}")

    def combos(self) -> tuple[list[ObjectSpec], list[ObjectSpec]]:
        """(train, held_out) specs."""
        return split_combos(self.shapes, self.colours)


@dataclass
class Batch:
    """A training batch."""

    images: torch.Tensor  # [B, 3, S, S] RGB in [0, 1]
    caption_index: torch.Tensor  # [B] long, indices into TrainingData.captions
    cameras: torch.Tensor  # [B, 3] azimuth°, elevation°, distance
    specs: list[ObjectSpec]  # [B] the objects shown


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=generator)


def sample_cameras(n: int, config: TinyDataConfig, generator: torch.Generator) -> torch.Tensor:
    """[n, 3] azimuth°, elevation°, distance drawn uniformly in the config's ranges."""
    return torch.stack([_uniform(n, config.azimuth, generator), _uniform(n, config.elevation, generator),
                        _uniform(n, config.distance, generator)], dim=-1)


def render_premultiplied(spec: ObjectSpec, cameras: torch.Tensor, config: TinyDataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Renders over black of `spec` from cameras [n, 3]: (premultiplied rgb [n,3,S,S], alpha [n,1,S,S])."""
    from dreamer.shapes import render_spec

    size = config.image_size
    cams = from_spherical(cameras[:, 0], cameras[:, 1], cameras[:, 2], config.fovy, size, size)
    out = render_spec(spec, cams, background=(0.0, 0.0, 0.0), supersample=config.supersample)
    return out.rgb.permute(0, 3, 1, 2).contiguous(), out.alpha.permute(0, 3, 1, 2).contiguous()


def random_backgrounds(n: int, size: int, config: TinyDataConfig, generator: torch.Generator,
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


class TrainingData:
    """Batches of composited views with caption indices, from the bank or rendered live."""

    def __init__(self, config: TinyDataConfig, bank=None) -> None:
        self.config = config
        self.train_specs, self.held_out = config.combos()
        if not self.train_specs:
            raise UserError("tiny data: every selected colour × shape combination is held out")
        self.spec_index = {s: i for i, s in enumerate(self.train_specs)}
        self.spec_captions: list[list[Caption]] = [captions_for(s) for s in self.train_specs]
        self.captions: list[str] = sorted({c.text for caps in self.spec_captions for c in caps})
        self._caption_index = {t: i for i, t in enumerate(self.captions)}
        self.bank = bank  # a views.ViewBank when source == "bank"
        if config.source == "bank" and bank is None:
            raise ValueError("source 'bank' needs a ViewBank (dreamer.priors.tiny.views.load_or_build_bank)")
        focused = torch.tensor([s.shape in config.focus_shapes for s in self.train_specs])  # [n_specs]
        self._spec_weights = torch.where(focused, config.focus_weight, 1.0)  # [n_specs]
        self._uniform = bool((self._spec_weights == 1.0).all())

    def _draw(self, weights: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
        """[size] indices drawn with replacement, uniformly unless some shapes are focused."""
        if self._uniform:  # the plain draw keeps earlier runs bit-for-bit reproducible
            return torch.randint(len(weights), (size,), generator=generator)
        return torch.multinomial(weights, size, replacement=True, generator=generator)

    def _captions(self, specs: list[ObjectSpec], generator: torch.Generator) -> torch.Tensor:
        picks = [pick_caption(self.spec_captions[self.spec_index[s]], generator, self.config.parseable_share)
                 for s in specs]
        return torch.tensor([self._caption_index[c.text] for c in picks], dtype=torch.long)

    def batch(self, size: int, generator: torch.Generator) -> Batch:
        c = self.config
        if c.source == "bank":
            rows = self._draw(self._spec_weights[self.bank.combo], size, generator)
            premult, alpha = self.bank.premultiplied[rows].float(), self.bank.alpha[rows].float()
            cameras = self.bank.cameras[rows]
            specs = [self.train_specs[i] for i in self.bank.combo[rows].tolist()]
        else:
            picks = self._draw(self._spec_weights, size, generator).tolist()
            specs = [self.train_specs[i] for i in picks]
            cameras = sample_cameras(size, c, generator)
            rendered = [render_premultiplied(s, cameras[i:i + 1], c) for i, s in enumerate(specs)]
            premult = torch.cat([r[0] for r in rendered])
            alpha = torch.cat([r[1] for r in rendered])
        object_rgb = torch.tensor([s.rgb for s in specs])  # [B, 3]
        images = composite(premult, alpha, random_backgrounds(size, c.image_size, c, generator, object_rgb))
        return Batch(images, self._captions(specs, generator), cameras, specs)
