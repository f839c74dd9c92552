"""Training data of the `tiny-mv` prior: view sets of one object, rendered live.

A sample is V views of one library object sharing one elevation, distance and field of view, at
azimuths drawn by `dreamer.cameras.view_set_spherical` (evenly spaced with jitter for `even_share`
of the sets, arbitrary spacings for the rest, because a cube's faces repeat every 90°), composited
over one background per set, with one caption per set. The shape library's ray tracer renders a
4-view set in about 10 ms at 32 px, so every set is rendered fresh (no bank: unbounded camera
variety at ~5 % of a training step). Held-out pairs (captions.HELD_OUT) are excluded as for `tiny`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from dreamer.cameras import OrbitConfig, view_set_spherical
from dreamer.priors.tiny.data import TinyDataConfig, TrainingData
from dreamer.shapes import ObjectSpec
from dreamer.shapes import views as shape_views
from dreamer.shapes.views import composite


@dataclass
class ViewSetBatch:
    """N sets of V views, set-major."""

    images: torch.Tensor  # [N·V, 3, S, S] RGB in [0, 1]
    caption_index: torch.Tensor  # [N·V] long (one caption per set, repeated)
    cameras: torch.Tensor  # [N·V, 3] azimuth°, elevation°, distance
    fovy: torch.Tensor  # [N·V] degrees
    specs: list[ObjectSpec]  # [N] the objects shown
    views: int  # V
    alpha: torch.Tensor  # [N·V, 1, S, S] the object's coverage (for object-weighted losses)


class ViewSetData:
    """Batches of live-rendered view sets with caption indices."""

    def __init__(self, config: TinyDataConfig) -> None:
        self.config = config
        self.singles = TrainingData(dataclasses.replace(config, source="live"))  # specs, captions, weights
        self.captions = self.singles.captions
        self.orbit = OrbitConfig(distance=config.distance, fovy=config.fovy_range or (config.fovy, config.fovy),
                                 elevation=config.elevation, azimuth=config.azimuth)

    def batch(self, sets: int, generator: torch.Generator) -> ViewSetBatch:
        c, v = self.config, self.config.views_per_set
        picks = self.singles._draw(self.singles._spec_weights, sets, generator).tolist()
        specs = [self.singles.train_specs[i] for i in picks]
        spherical, fovy = view_set_spherical(sets, v, self.orbit, generator, c.set_jitter, c.even_share)
        premult, alpha = [], []
        for i, spec in enumerate(specs):
            rows = slice(i * v, (i + 1) * v)
            view_config = dataclasses.replace(c.view_config(), fovy=float(fovy[i * v]))
            rgb, a = shape_views.render_premultiplied(spec, spherical[rows], view_config)
            premult.append(rgb)
            alpha.append(a)
        object_rgb = torch.tensor([s.rgb for s in specs])  # [N, 3]
        backgrounds = shape_views.random_backgrounds(sets, c.image_size, c.view_config(), generator, object_rgb)
        alpha = torch.cat(alpha)
        images = composite(torch.cat(premult), alpha, backgrounds.repeat_interleave(v, dim=0))
        captions = self.singles._captions(specs, generator).repeat_interleave(v)
        return ViewSetBatch(images, captions, spherical, fovy, specs, v, alpha)
