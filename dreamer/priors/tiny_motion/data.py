"""Training clips of the `tiny-motion` prior: the animated shape library, captioned, at random phases.

A clip is F frames of one moving library object (dreamer.shapes.motions) from one camera, at the
loop times (p + k / F) mod 1, k < F, from a random start phase p. The clip bank renders every
(shape, motion) pair from `views_per_pair` random cameras, each view in its own colour, at the
`phases` loop times j / phases (a multiple of F, so every clip is `frames` rows of one view's
frames), over black with the coverage; a batch composites each clip over one fresh background
(solid or gradient, as `tiny`'s training views), so background variety costs nothing.

Captions: the object captions that `tiny` was trained on (dreamer.priors.tiny.captions), with a
motion phrase: a motion word or synonym after the object ("a crimson cube hopping") or before it
("a hopping crimson cube"), or "… that is <word>". A still clip keeps the bare object caption.

Held out: the image prior's held-out (colour, shape) pairs never appear, and the whole
(colour, shape, motion) triples in `HELD_OUT_TRIPLES` never appear; each of their colours, shapes
and motions appears in training with other partners.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from dreamer.errors import UserError
from dreamer.priors.tiny.captions import captions_for, is_held_out, pick_caption
from dreamer.shapes import OBJECTS, ObjectSpec
from dreamer.shapes import views as shape_views
from dreamer.shapes.clips import STILL, ClipBank, clip_frames, render_clip_bank
from dreamer.shapes.colours import COLOURS
from dreamer.shapes.motions import MOTION_WORDS, MOTIONS
from dreamer.shapes.views import composite

log = logging.getLogger(__name__)

BANK_VERSION = 1  # bump when the way clips are rendered changes
# (colour, shape, motion) triples never trained on: two per motion, no shape or colour twice
HELD_OUT_TRIPLES: tuple[tuple[str, str, str], ...] = (
    ("red", "cube", "spinning"), ("blue", "mug", "spinning"),
    ("green", "sphere", "bouncing"), ("yellow", "chair", "bouncing"),
    ("orange", "cylinder", "sliding"), ("purple", "tree", "sliding"),
    ("pink", "cone", "swaying"), ("white", "house", "swaying"),
    ("brown", "torus", "pulsing"), ("gray", "snowman", "pulsing"),
    ("black", "capsule", "orbiting"), ("red", "table", "orbiting"),
)


@dataclass
class ClipDataConfig:
    """What the motion prior is trained on."""

    image_size: int = 32  # side of the frames, pixels (the image prior's resolution)
    supersample: int = 2  # per-axis supersampling of renders
    frames: int = 8  # F, frames per clip (one loop)
    phases: int = 16  # loop times rendered per view (a multiple of `frames`); start phases j / phases
    views_per_pair: int = 24  # bank: random cameras per (shape, motion), each with its own colour
    still_share: float = 0.15  # share of clips of an object standing still (the caption names no motion)
    shapes: tuple[str, ...] | None = None  # library shapes to use; None = all
    motions: tuple[str, ...] | None = None  # motions to use (besides "still"); None = all
    azimuth: tuple[float, float] = (0.0, 360.0)  # camera ranges, as `tiny`'s training views
    elevation: tuple[float, float] = (-15.0, 60.0)
    distance: tuple[float, float] = (2.4, 3.2)
    fovy: float = 42.5
    background_solid: float = 0.5  # backgrounds, as `tiny`'s
    background_neutral: float = 0.5
    parseable_share: float = 0.5  # share of object captions from parseable templates
    seed: int = 0  # the bank's cameras and colours

    def __post_init__(self) -> None:
        for name in ("azimuth", "elevation", "distance", "shapes", "motions"):
            value = getattr(self, name)
            setattr(self, name, tuple(value) if value is not None else None)
        unknown = sorted(set(self.shapes or ()) - set(OBJECTS)) + sorted(set(self.motions or ()) - set(MOTIONS))
        if unknown or self.shapes == () or self.motions == ():
            raise UserError(f"tiny-motion data: unknown or no shapes / motions {unknown}; shapes are "
                            f"{', '.join(OBJECTS)}; motions {', '.join(MOTIONS)}")
        if self.frames < 2 or self.phases % self.frames:
            raise UserError(f"tiny-motion data: frames must be >= 2 and divide phases; got {self.frames}, {self.phases}")
        if self.views_per_pair < 1 or not 0.0 <= self.still_share < 1.0:
            raise UserError("tiny-motion data: views_per_pair must be >= 1 and still_share in [0, 1)")

    def view_config(self) -> shape_views.ViewConfig:
        return shape_views.ViewConfig(**{f.name: getattr(self, f.name) for f in fields(shape_views.ViewConfig)})


def is_held_out_triple(spec: ObjectSpec, motion: str) -> bool:
    return (spec.colour, spec.shape, motion) in HELD_OUT_TRIPLES


def training_colours(shape: str, motion: str) -> list[str]:
    """Colours a (shape, motion) clip may take in training."""
    return [c for c in COLOURS if not is_held_out(ObjectSpec(shape, c))
            and not is_held_out_triple(ObjectSpec(shape, c), motion)]


def motion_captions(object_caption: str, motion: str) -> list[str]:
    """Captions of a moving object from one of its object captions: every motion word, after it or before it."""
    if motion == STILL:
        return [object_caption]
    words = sorted(w for w, m in MOTION_WORDS.items() if m == motion and w.endswith("ing"))
    out = [f"{object_caption} {w}" for w in words]
    out += [f"{object_caption} that is {w}" for w in words[:2]]
    if object_caption.startswith(("a ", "an ")):  # "a hopping red cube"
        rest = object_caption.split(" ", 1)[1]
        out += [f"a {w} {rest}" for w in words[:2]]
    return out


def build_bank(config: ClipDataConfig, progress: Callable[[int, int], None] | None = None) -> ClipBank:
    """Render the bank (seeded by `config.seed`): every (shape, motion) pair of the config, `views_per_pair`
    views, each in a colour it may take in training (`training_colours`)."""
    pairs = [(shape, motion) for shape in (config.shapes or OBJECTS) for motion in (*(config.motions or MOTIONS), STILL)]
    return render_clip_bank(pairs, training_colours, config.views_per_pair, config.phases, config.view_config(),
                            torch.Generator().manual_seed(config.seed), progress)


def load_or_build_bank(config: ClipDataConfig, cache_dir: Path | None = None,
                       progress: Callable[[int, int], None] | None = None) -> ClipBank:
    """The bank cached for `config` (in `cache_dir`, default the tiny prior's view-bank cache,
    $DREAMER_CACHE or ~/.cache/dreamer) when it was rendered from the same config and shape library;
    else rendered and cached (an unwritable cache is skipped)."""
    from dataclasses import asdict

    from dreamer.io import atomic_save
    from dreamer.priors.tiny.views import default_cache_dir
    from dreamer.shapes.fingerprint import cache_key, shape_library_fingerprint

    key = cache_key({"version": BANK_VERSION, "library": shape_library_fingerprint(), "data": asdict(config),
                     "held_out": HELD_OUT_TRIPLES})
    path = Path(cache_dir or default_cache_dir()) / f"clips-{config.image_size}px-{key}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            return ClipBank(saved["premultiplied"], saved["alpha"], saved["cameras"],
                            [ObjectSpec(shape, colour) for shape, colour in saved["specs"]], list(saved["motions"]))
        except Exception as exc:  # unreadable cache: render again
            log.warning("clip bank %s is unreadable (%s); re-rendering", path, exc)
    bank = build_bank(config, progress)
    try:
        saved = {"premultiplied": bank.premultiplied, "alpha": bank.alpha, "cameras": bank.cameras,
                 "specs": [(s.shape, s.colour) for s in bank.specs], "motions": bank.motions}
        atomic_save(path, lambda tmp: torch.save(saved, tmp))
    except OSError as exc:
        log.warning("could not write the clip bank %s (%s)", path, exc)
    return bank


@dataclass
class ClipBatch:
    """A training batch of clips."""

    clips: torch.Tensor  # [B, F, 3, S, S] RGB in [0, 1]
    alpha: torch.Tensor  # [B, F, 1, S, S] the object's coverage
    captions: list[str]  # [B] (the captions are too many to encode up front: ~300k; a step encodes its own)
    cameras: torch.Tensor  # [B, 3] azimuth°, elevation°, distance (one camera per clip)
    specs: list[ObjectSpec]
    motions: list[str]
    phases: torch.Tensor  # [B] start phase of each clip, in loops
    rows: torch.Tensor  # [B] the bank rows the clips are from
    background: torch.Tensor  # [B, 3, S, S] each clip's background


class ClipData:
    """Batches of composited clips with their captions, drawn from a ClipBank."""

    def __init__(self, config: ClipDataConfig, bank: ClipBank) -> None:
        self.config, self.bank = config, bank
        keys = sorted({(s, m) for s, m in zip(bank.specs, bank.motions)}, key=str)
        self._captions_of = {}
        for spec, motion in keys:
            objects = captions_for(spec)
            self._captions_of[(spec, motion)] = [(c, motion_captions(c.text, motion)) for c in objects]
        still = torch.tensor([m == STILL for m in bank.motions])
        self._still_rows, self._moving_rows = torch.nonzero(still).squeeze(1), torch.nonzero(~still).squeeze(1)

    def _caption(self, spec: ObjectSpec, motion: str, gen: torch.Generator) -> str:
        pairs = self._captions_of[(spec, motion)]
        picked = pick_caption([c for c, _ in pairs], gen, self.config.parseable_share)
        texts = next(ts for c, ts in pairs if c == picked)
        return texts[int(torch.randint(len(texts), (), generator=gen))]

    def batch(self, size: int, gen: torch.Generator) -> ClipBatch:
        c, bank = self.config, self.bank
        still = torch.rand(size, generator=gen) < c.still_share
        pick_still = self._still_rows[torch.randint(len(self._still_rows), (size,), generator=gen)]
        pick_moving = self._moving_rows[torch.randint(len(self._moving_rows), (size,), generator=gen)]
        rows = torch.where(still, pick_still, pick_moving)  # [B]
        start = torch.randint(c.phases, (size,), generator=gen)  # [B]
        premult, alpha = clip_frames(bank, rows, start, c.frames)  # [B, F, 3|1, S, S]
        specs = [bank.specs[i] for i in rows.tolist()]
        motions = [bank.motions[i] for i in rows.tolist()]
        object_rgb = torch.tensor([s.rgb for s in specs])
        background = shape_views.random_backgrounds(size, c.image_size, c.view_config(), gen, object_rgb)
        clips = composite(premult, alpha, background[:, None])  # one background per clip
        captions = [self._caption(s, m, gen) for s, m in zip(specs, motions)]
        return ClipBatch(clips, alpha, captions, bank.cameras[rows], specs, motions, start.float() / c.phases,
                         rows, background)

    def every_phase(self, batch: ClipBatch) -> torch.Tensor:
        """[B, P, F, 3, S, S] RGB in [0, 1]: each clip of `batch` from every start phase j < P of its bank row,
        over its own background (the candidates of `posterior.phase_posterior_x0`; candidate j at the clip's
        own start is the clip itself)."""
        count, frames = self.config.phases, self.config.frames
        b = len(batch.rows)
        rows = batch.rows[:, None].expand(b, count).reshape(-1)
        start = torch.arange(count).repeat(b)
        premult, alpha = clip_frames(self.bank, rows, start, frames)  # [B·P, F, 3|1, S, S]
        background = batch.background.repeat_interleave(count, dim=0)[:, None]
        return composite(premult, alpha, background).reshape(b, count, *premult.shape[1:])

