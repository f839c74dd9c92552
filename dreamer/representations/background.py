"""Background models: what a ray that leaves the volume sees.

"white" / "black" are constants; "random" draws one colour per image (a common trick that stops
the object from becoming transparent to match the background); "learned" is a small MLP of the
ray direction (a sin/cos encoding of the unit direction), with a sigmoid output.
"""

from __future__ import annotations

import torch

__all__ = ["Background", "BACKGROUNDS"]

BACKGROUNDS = ("learned", "white", "black", "random")


class Background(torch.nn.Module):
    """Colour [B, H, W, 3] in [0, 1] for ray directions [B, H, W, 3]."""

    def __init__(self, kind: str = "learned", hidden: int = 16, frequencies: int = 2):
        super().__init__()
        if kind not in BACKGROUNDS:
            raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
        self.kind = kind
        self.frequencies = frequencies
        self.mlp = None
        if kind == "learned":
            in_dim = 3 + 6 * frequencies
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))

    def encode(self, dirs: torch.Tensor) -> torch.Tensor:  # [..., 3] -> [..., 3 + 6F]
        feats = [dirs]
        for k in range(self.frequencies):
            feats += [torch.sin((2.0 ** k) * torch.pi * dirs), torch.cos((2.0 ** k) * torch.pi * dirs)]
        return torch.cat(feats, dim=-1)

    def forward(self, dirs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        B = dirs.shape[0]
        if self.kind == "white":
            return torch.ones_like(dirs)
        if self.kind == "black":
            return torch.zeros_like(dirs)
        if self.kind == "random":
            if not self.training:  # evaluation renders are deterministic: white
                return torch.ones_like(dirs)
            device = generator.device if generator is not None else dirs.device
            c = torch.rand(B, 3, generator=generator, device=device).to(dirs)  # [B, 3]
            return c.view(B, *([1] * (dirs.ndim - 2)), 3).expand_as(dirs)
        return torch.sigmoid(self.mlp(self.encode(dirs)))  # [B, H, W, 3]
