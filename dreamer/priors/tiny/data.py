"""Training data of the `tiny` prior: shape-library views with captions, cameras and backgrounds.

A training example is (image [3, S, S] in [0, 1], caption, camera (azimuth°, elevation°,
distance)). Objects are rendered once over black with their coverage (premultiplied colour +
alpha) and composited over a fresh background every time they are drawn, so background variety
costs nothing (dreamer.shapes.views, shared with the evaluator classifier's training). Random
backgrounds keep white and black objects visible and stop the model from learning
"object = not white".

Two sources with the same batches' distribution (`TinyDataConfig.source`):

* "bank" — a `ViewBank` of `views_per_combo` seeded random views per training combination,
  rendered once and cached on disk (dreamer.priors.tiny.views); batches draw from it;
* "live" — every example rendered on the fly from a fresh random camera (slower; the obvious
  twin of the bank, and unbounded view variety).

Held-out combinations (captions.HELD_OUT) are excluded from both sources.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch

from dreamer.errors import UserError
from dreamer.priors.tiny.captions import Caption, captions_for, pick_caption, split_combos
from dreamer.shapes import OBJECTS, ObjectSpec
from dreamer.shapes import views as shape_views
from dreamer.shapes.views import composite


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
    # view sets (tiny-mv, dreamer.priors.tiny.view_sets): V views of one object per sample, rendered live
    views_per_set: int = 1  # V; 1 = single views (tiny)
    fovy_range: tuple[float, float] | None = None  # view sets: per-set field of view range; None = `fovy`
    set_jitter: float = 20.0  # view sets: azimuth jitter (±degrees) around the even 360°/V spacing
    even_share: float = 0.7  # view sets: share of evenly spaced sets (the rest: arbitrary azimuths)

    def __post_init__(self) -> None:
        for name in ("azimuth", "elevation", "distance", "shapes", "colours", "focus_shapes", "fovy_range"):
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
        if self.views_per_set < 1:
            raise UserError(f"tiny data: views_per_set must be >= 1, got {self.views_per_set}")
        if not 0.0 <= self.even_share <= 1.0:
            raise UserError(f"tiny data: even_share must be in [0, 1], got {self.even_share}")
        if self.focus_weight <= 0:
            raise UserError(f"tiny data: focus_weight must be > 0, got {self.focus_weight}")
        unknown = sorted(set(self.focus_shapes) - set(OBJECTS))
        if unknown:
            raise UserError(f"tiny data: unknown focus shape(s) {', '.join(unknown)}; known: {', '.join(OBJECTS)}")

    def combos(self) -> tuple[list[ObjectSpec], list[ObjectSpec]]:
        """(train, held_out) specs."""
        return split_combos(self.shapes, self.colours)

    def view_config(self) -> shape_views.ViewConfig:
        """The view settings (cameras, render, backgrounds) among these fields."""
        return shape_views.ViewConfig(**{f.name: getattr(self, f.name) for f in fields(shape_views.ViewConfig)})


@dataclass
class Batch:
    """A training batch."""

    images: torch.Tensor  # [B, 3, S, S] RGB in [0, 1]
    caption_index: torch.Tensor  # [B] long, indices into TrainingData.captions
    cameras: torch.Tensor  # [B, 3] azimuth°, elevation°, distance
    specs: list[ObjectSpec]  # [B] the objects shown
    alpha: torch.Tensor | None = None  # [B, 1, S, S] the object's coverage (for object-weighted losses)


def sample_cameras(n: int, config: TinyDataConfig, generator: torch.Generator) -> torch.Tensor:
    """[n, 3] azimuth°, elevation°, distance drawn uniformly in the config's ranges."""
    return shape_views.sample_cameras(n, config.view_config(), generator)


def render_premultiplied(spec: ObjectSpec, cameras: torch.Tensor, config: TinyDataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Renders over black of `spec` from cameras [n, 3]: (premultiplied rgb [n,3,S,S], alpha [n,1,S,S])."""
    return shape_views.render_premultiplied(spec, cameras, config.view_config())


def random_backgrounds(n: int, size: int, config: TinyDataConfig, generator: torch.Generator,
                       object_rgb: torch.Tensor | None = None) -> torch.Tensor:
    """[n, 3, S, 1] solid or gradient backgrounds (dreamer.shapes.views.random_backgrounds)."""
    return shape_views.random_backgrounds(n, size, config.view_config(), generator, object_rgb)


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
        return Batch(images, self._captions(specs, generator), cameras, specs, alpha)
