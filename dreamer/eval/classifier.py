"""The evaluator: a small CNN with a colour head and a shape head, trained on shape-library renders.

It is independent of the tiny prior (its own views, seed and architecture) and judges two
things: the prior's samples (is this "a red chair"?) and the renders of any 3D result
(R-precision among the library prompts, dreamer.eval.rprecision). Images of any size are
resized to the classifier's 32 px with area averaging, so a 128 px eval render and a 32 px
prior sample are seen alike. Weights ship in `assets/evaluator/`; training:
dreamer.eval.classifier_train.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamer.errors import UserError
from dreamer.resources import resolve_weights

DEFAULT_WEIGHTS = "assets/evaluator"


@dataclass
class ClassifierConfig:
    """Architecture and label sets of the evaluator."""

    image_size: int = 32  # input side, pixels (inputs of other sizes are area-resized)
    channels: tuple[int, ...] = (24, 48, 96)  # per stage; each stage halves the resolution
    hidden: int = 256  # width of the shared layer before the heads
    colours: list[str] = field(default_factory=list)  # colour head labels, in order
    shapes: list[str] = field(default_factory=list)  # shape head labels, in order

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if not self.colours or not self.shapes:
            from dreamer.shapes import COLOURS, OBJECTS

            self.colours = self.colours or list(COLOURS)
            self.shapes = self.shapes or list(OBJECTS)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(), nn.AvgPool2d(2))


class ShapeColourClassifier(nn.Module):
    """[B, 3, H, W] images in [0, 1] -> (colour logits [B, C], shape logits [B, S])."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        stages, cin = [], 3
        for cout in config.channels:
            stages.append(_block(cin, cout))
            cin = cout
        self.features = nn.Sequential(*stages)
        side = config.image_size // 2 ** len(config.channels)
        # flatten rather than pool globally: where the parts are (a lamp's shade above its pole) is the shape
        self.shared = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(cin * side * side, config.hidden), nn.SiLU())
        self.colour_head = nn.Linear(config.hidden, len(config.colours))
        self.shape_head = nn.Linear(config.hidden, len(config.shapes))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the classifier's size (area average when shrinking) and centre to [−1, 1]."""
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            mode = "area" if images.shape[-1] > size else "bilinear"
            images = F.interpolate(images, size=(size, size), mode=mode)
        return images * 2.0 - 1.0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(self.features(self.prepare(images)))
        return self.colour_head(h), self.shape_head(h)


@dataclass
class Prediction:
    """Per-image labels and probabilities."""

    colours: list[str]
    shapes: list[str]
    colour_probs: torch.Tensor  # [B, C]
    shape_probs: torch.Tensor  # [B, S]


class Evaluator:
    """The trained classifier in eval mode, with prompt-level scoring."""

    def __init__(self, model: ShapeColourClassifier) -> None:
        self.model = model.eval()
        self.config = model.config

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> Prediction:
        """Classify [B, 3, H, W] images in [0, 1]."""
        colour, shape = [], []
        for chunk in images.float().split(batch):
            c, s = self.model(chunk)
            colour.append(c.softmax(-1))
            shape.append(s.softmax(-1))
        cp, sp = torch.cat(colour), torch.cat(shape)
        return Prediction([self.config.colours[i] for i in cp.argmax(-1).tolist()],
                          [self.config.shapes[i] for i in sp.argmax(-1).tolist()], cp, sp)

    def prompt_log_probs(self, prediction: Prediction) -> torch.Tensor:
        """[B, C·S] log p(colour) + log p(shape) of every library prompt, colour-major (see `prompts`)."""
        lc = prediction.colour_probs.clamp_min(1e-12).log()
        ls = prediction.shape_probs.clamp_min(1e-12).log()
        return (lc[:, :, None] + ls[:, None, :]).flatten(1)

    def prompts(self) -> list[tuple[str, str]]:
        """The (colour, shape) candidates, in the order of `prompt_log_probs`' columns."""
        return [(c, s) for c in self.config.colours for s in self.config.shapes]


def weights_folder(path: str | Path | None = None) -> Path:
    """The evaluator folder: `path`, else `assets/evaluator` in the current folder, then the shipped one."""
    return resolve_weights(path or DEFAULT_WEIGHTS)


def save_classifier(model: ShapeColourClassifier, folder: Path | str, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    from dreamer.io import atomic_save, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_save(folder / "model.safetensors", lambda tmp: save_file(state, str(tmp)))
    info = {"config": asdict(model.config), **(extra or {})}
    atomic_write_text(folder / "config.json", json.dumps(info, indent=2))


def load_classifier(folder: str | Path | None = None) -> Evaluator:
    """The evaluator from its folder; a one-line UserError when it is missing."""
    from safetensors.torch import load_file

    folder = weights_folder(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise UserError(f"evaluator weights not found in '{folder}' (train them: python -m dreamer.eval.classifier_train)")
    info = json.loads((folder / "config.json").read_text())
    model = ShapeColourClassifier(ClassifierConfig(**info["config"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return Evaluator(model)


@lru_cache(maxsize=2)
def default_evaluator() -> Evaluator:
    """The shipped evaluator, loaded once per process."""
    return load_classifier(None)
