"""Contact-sheet rows shared by the shape and motion sheets: a text label, then a strip of renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def labelled_row(label: str, rgb: torch.Tensor, label_width: int) -> np.ndarray:
    """rgb [N, H, W, 3] in [0, 1] -> one uint8 row [H, label_width + N·W, 3]: the label on white, then the N images."""
    size = rgb.shape[1]
    strip = np.concatenate(list((rgb.detach().cpu().numpy() * 255).round().astype(np.uint8)), axis=1)
    text = Image.new("RGB", (label_width, size), "white")
    ImageDraw.Draw(text).text((8, size // 2 - 6), label, fill="black")
    return np.concatenate([np.asarray(text), strip], axis=1)


def write_sheet(rows: list[np.ndarray], out: str | Path) -> Path:
    """Stack the rows top to bottom into one PNG at `out` (its folder is created); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return out
