"""The motion judge: a small network that says which motion a clip shows (still, spinning, bouncing, …).

It judges the `tiny-motion` prior's samples (bench/motion_prior.py) the way `dreamer.eval.classifier`
judges colour and shape, and it is independent of the prior: its own seed, views and architecture,
trained on ground-truth clips of the animated library (dreamer.eval.motion_classifier_train).

Input: a clip [B, F, 3, H, W] in [0, 1], frames of one loop from any start phase, any background;
frames are area-resized to 32 px. Each frame is seen with its change to the next one (the loop
wraps: frame F−1 is followed by frame 0), so the network reads motion directly; a 2D CNN keeps a 4×4
grid of where things are and move, a circular convolution over time mixes neighbouring frames, and a
mean over time makes the verdict independent of the phase the clip starts at.

Labels are what an image can show: a spin of a shape symmetric about the vertical axis (a sphere, a
cone, …) changes no render, so its clips are labelled "still" (`visible_motion`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamer.errors import UserError
from dreamer.resources import resolve_weights
from dreamer.shapes.motions import MOTIONS

DEFAULT_WEIGHTS = "assets/motion_evaluator"
MOTION_CLASSES: tuple[str, ...] = ("still", *MOTIONS)


@dataclass
class MotionClassifierConfig:
    """Architecture of the motion judge."""

    image_size: int = 32  # frames are area-resized to this side
    channels: tuple[int, ...] = (24, 48, 64)  # per stage of the frame encoder; each halves the resolution
    hidden: int = 128  # per-frame feature width
    classes: tuple[str, ...] = MOTION_CLASSES

    def __post_init__(self) -> None:
        self.channels, self.classes = tuple(self.channels), tuple(self.classes)
        if self.image_size % (2 ** len(self.channels)):
            raise UserError("motion classifier: image_size must be divisible by 2^stages")


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, stride=2, padding=1), nn.SiLU())


class MotionClassifier(nn.Module):
    """clips [B, F, 3, H, W] in [0, 1] -> motion logits [B, len(classes)]."""

    def __init__(self, config: MotionClassifierConfig) -> None:
        super().__init__()
        self.config = config
        stages, cin = [], 6
        for cout in config.channels:
            stages.append(_stage(cin, cout))
            cin = cout
        self.frames = nn.Sequential(*stages)
        grid = config.image_size // 2 ** len(config.channels)
        self.per_frame = nn.Linear(cin * grid * grid, config.hidden)
        self.temporal = nn.Conv1d(config.hidden, config.hidden, 3, padding=1, padding_mode="circular")
        self.head = nn.Linear(config.hidden, len(config.classes))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[2] != 3 or clips.shape[1] < 2:
            raise UserError(f"the motion classifier takes clips [B, F >= 2, 3, H, W]; got {tuple(clips.shape)}")
        b, f = clips.shape[:2]
        size = self.config.image_size
        x = clips.flatten(0, 1).float()
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        x = x.unflatten(0, (b, f)) * 2.0 - 1.0
        change = x.roll(-1, dims=1) - x  # each frame's change to the next (the loop wraps)
        h = self.frames(torch.cat([x, change], dim=2).flatten(0, 1))  # [B·F, C, g, g]
        h = F.silu(self.per_frame(h.flatten(1))).unflatten(0, (b, f))  # [B, F, H]
        h = F.silu(self.temporal(h.transpose(1, 2)))  # [B, H, F]
        return self.head(h.mean(dim=2))


class MotionJudge:
    """A trained MotionClassifier with its labels: `predict(clips)` -> one motion name per clip."""

    def __init__(self, model: MotionClassifier) -> None:
        self.model = model.eval().requires_grad_(False)
        self.classes = model.config.classes

    @torch.no_grad()
    def probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        """[B, classes] softmax over the motions."""
        return self.model(clips.cpu()).softmax(dim=-1)

    def predict(self, clips: torch.Tensor) -> list[str]:
        return [self.classes[i] for i in self.probabilities(clips).argmax(dim=-1).tolist()]


@lru_cache(maxsize=None)
def visible_motion(shape: str, motion: str) -> str:
    """The motion a render of `shape` moving by `motion` shows: `motion`, or "still" when no image shows it
    (a spin of a shape symmetric about the vertical axis: dreamer.eval.four_d_metrics.motion_is_visible)."""
    if motion == "still":
        return motion
    from dreamer.eval.four_d_metrics import motion_is_visible
    from dreamer.shapes import ObjectSpec
    from dreamer.shapes.motions import MotionSpec

    return motion if motion_is_visible(MotionSpec(ObjectSpec(shape, "red"), motion), resolution=32) else "still"


def save_motion_classifier(model: MotionClassifier, folder: Path | str, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    from dreamer.io import atomic_save, atomic_write_text

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save(folder / "model.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}
    atomic_write_text(folder / "config.json", json.dumps({**config, **(extra or {})}, indent=2) + "\n")


def load_motion_judge(folder: str | Path | None = None) -> MotionJudge:
    """The judge in `folder` (default: the shipped assets/motion_evaluator); UserError when missing."""
    from safetensors.torch import load_file

    folder = resolve_weights(str(folder or DEFAULT_WEIGHTS))
    if not (folder / "model.safetensors").is_file():
        raise UserError(f"no motion classifier in {folder}: train one with "
                        "`python -m dreamer.eval.motion_classifier_train`")
    saved = json.loads((folder / "config.json").read_text())
    fields = MotionClassifierConfig.__dataclass_fields__
    model = MotionClassifier(MotionClassifierConfig(**{k: v for k, v in saved.items() if k in fields}))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return MotionJudge(model)
