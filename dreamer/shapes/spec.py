"""`ObjectSpec`: one library object in one named colour, and its coloured SDF."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.errors import UserError
from dreamer.shapes.colours import COLOURS, canonical_colour
from dreamer.shapes.objects import OBJECTS, ShapeObject, canonical_shape


def vocabulary() -> str:
    """'known shapes are ...; known colours are ...' for error messages."""
    return f"known shapes are {', '.join(OBJECTS)}; known colours are {', '.join(COLOURS)}"


def with_article(phrase: str) -> str:
    """'a red chair', 'an orange mushroom' (by first letter; fine for this vocabulary)."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


@dataclass(frozen=True)
class ObjectSpec:
    """A shape of the library in a named colour. Synonyms ('grey', 'box') are canonicalised."""

    shape: str
    colour: str

    def __post_init__(self) -> None:
        shape, colour = canonical_shape(self.shape), canonical_colour(self.colour)
        if shape is None:
            raise UserError(f"unknown shape {self.shape!r}: {vocabulary()}")
        if colour is None:
            raise UserError(f"unknown colour {self.colour!r}: {vocabulary()}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "colour", colour)

    @property
    def prompt(self) -> str:
        return with_article(f"{self.colour} {self.shape}")

    @property
    def object(self) -> ShapeObject:
        return OBJECTS[self.shape]

    @property
    def rgb(self) -> tuple[float, float, float]:
        return COLOURS[self.colour]


def sdf_and_colour(spec: ObjectSpec, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance [N] (negative inside) and albedo RGB [N, 3] of world points [N, 3].

    Differentiable in `points`; dtype and device follow `points`.
    """
    return spec.object.sdf_and_colour(points, spec.rgb)
