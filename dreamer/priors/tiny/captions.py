"""Captions for training views: templates × colour and shape words, and the held-out split.

Two kinds of template:

* parseable — built only from words `dreamer.shapes.parse_prompt` knows (the canonical colour
  names, the parser's synonyms "grey", "box", "ball", "donut", "doughnut", "pill", "cup", and
  its filler words), so every such caption parses back to its `ObjectSpec` (tested);
* paraphrase — free wording ("a photo of a red chair", "a chair painted red") and the colour
  paraphrases of `dreamer.shapes.colours.COLOUR_PARAPHRASES` ("crimson", "navy", ...): they
  teach the text encoder's neighbourhood. (The parser has accepted those colour words since
  issue 19; the caption set is unchanged, so the shipped weights' data still reproduces.)

The held-out split `HELD_OUT` (18 of the 16 × 11 = 176 colour × shape combinations, ~10 %) never
appears in training; every shape and every colour still appears in training with other partners,
so the held-out combinations measure generalisation to new pairings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.shapes.colours import COLOUR_PARAPHRASES, COLOUR_SYNONYMS, COLOURS
from dreamer.shapes.objects import OBJECTS, SHAPE_SYNONYMS
from dreamer.shapes.spec import ObjectSpec, with_article

# (colour, shape) pairs never used for training: one or two per colour and per shape.
HELD_OUT: tuple[tuple[str, str], ...] = (
    ("purple", "cube"), ("orange", "sphere"), ("pink", "cylinder"), ("blue", "cone"),
    ("green", "torus"), ("white", "pyramid"), ("brown", "capsule"), ("red", "snowman"),
    ("yellow", "mushroom"), ("black", "table"), ("blue", "chair"), ("green", "mug"),
    ("pink", "house"), ("gray", "tree"), ("purple", "lamp"), ("yellow", "dumbbell"),
    ("black", "sphere"), ("orange", "mushroom"),
)

# Templates; {c} is a colour word, {s} a shape word, {a} the article for the phrase that follows it.
PARSEABLE_TEMPLATES: tuple[str, ...] = (
    "{a} {c} {s}",
    "{c} {s}",
    "the {c} {s}",
    "a {s}, {c}",
    "{s}, {c}",
    "a {s} in {c}",
    "one {c} {s}",
    "a single {c} {s}",
    "a {c} coloured {s}",
    "a {s} of colour {c}",
)
PARAPHRASE_TEMPLATES: tuple[str, ...] = (
    "a photo of {a} {c} {s}",
    "a 3d render of {a} {c} {s}",
    "{a} {c} {s} on a plain background",
    "a {s} painted {c}",
    "a small {c} {s}",
    "{a} {c} toy {s}",
)


@dataclass(frozen=True)
class Caption:
    """One caption of one object."""

    text: str  # the caption
    spec: ObjectSpec  # the object it describes
    parseable: bool  # True when dreamer.shapes.parse_prompt(text) == spec


def all_combos(shapes: tuple[str, ...] | None = None, colours: tuple[str, ...] | None = None) -> list[ObjectSpec]:
    """Every (shape, colour) spec of the library (or of the given subsets), shape-major order."""
    return [ObjectSpec(s, c) for s in (shapes or tuple(OBJECTS)) for c in (colours or tuple(COLOURS))]


def is_held_out(spec: ObjectSpec) -> bool:
    return (spec.colour, spec.shape) in HELD_OUT


def split_combos(shapes: tuple[str, ...] | None = None,
                 colours: tuple[str, ...] | None = None) -> tuple[list[ObjectSpec], list[ObjectSpec]]:
    """(train, held_out) specs among the library's (or the given subsets') combinations."""
    combos = all_combos(shapes, colours)
    return [s for s in combos if not is_held_out(s)], [s for s in combos if is_held_out(s)]


def _shape_words(shape: str) -> list[str]:
    return [shape] + sorted(w for w, s in SHAPE_SYNONYMS.items() if s == shape)


def _parseable_colour_words(colour: str) -> list[str]:
    return [colour] + sorted(w for w, c in COLOUR_SYNONYMS.items() if c == colour)


def _fill(template: str, colour_word: str, shape_word: str) -> str:
    if "{a} " in template:
        head, tail = template.split("{a} ", 1)
        return head + with_article(tail.format(c=colour_word, s=shape_word))
    return template.format(c=colour_word, s=shape_word)


def captions_for(spec: ObjectSpec) -> list[Caption]:
    """Every caption of `spec`: parseable templates × parser words, paraphrases × all colour words."""
    shapes = _shape_words(spec.shape)
    parse_colours = _parseable_colour_words(spec.colour)
    all_colours = parse_colours + list(COLOUR_PARAPHRASES[spec.colour])
    out = [Caption(_fill(t, c, s), spec, True) for t in PARSEABLE_TEMPLATES for c in parse_colours for s in shapes]
    out += [Caption(_fill(t, c, s), spec, False) for t in PARAPHRASE_TEMPLATES for c in all_colours for s in shapes]
    out += [Caption(_fill(PARSEABLE_TEMPLATES[0], c, s), spec, False)
            for c in COLOUR_PARAPHRASES[spec.colour] for s in shapes]  # "a crimson chair"
    return out


def pick_caption(captions: list[Caption], generator: torch.Generator, parseable_share: float = 0.5) -> Caption:
    """A parseable caption with probability `parseable_share`, else a paraphrase; uniform within each."""
    parse = [c for c in captions if c.parseable]
    para = [c for c in captions if not c.parseable]
    pool = parse if (not para or float(torch.rand((), generator=generator)) < parseable_share) else para
    return pool[int(torch.randint(len(pool), (), generator=generator))]
