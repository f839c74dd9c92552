"""Named colours for prompts, their synonyms, and the fixed accent colours of secondary parts.

All values are linear-ish RGB in [0, 1]. Prompt colours are saturated enough to stay recognisable
after shading (which only darkens to at most half, see `raytrace.py`); white is kept a little
below 1 so a white object still separates from a white background.
"""

from __future__ import annotations

RGB = tuple[float, float, float]

COLOURS: dict[str, RGB] = {
    "red": (0.85, 0.12, 0.10),
    "orange": (0.95, 0.50, 0.08),
    "yellow": (0.95, 0.85, 0.12),
    "green": (0.15, 0.62, 0.20),
    "blue": (0.12, 0.30, 0.85),
    "purple": (0.50, 0.18, 0.68),
    "pink": (0.96, 0.52, 0.72),
    "brown": (0.50, 0.30, 0.14),
    "white": (0.93, 0.93, 0.93),
    "black": (0.07, 0.07, 0.07),
    "gray": (0.50, 0.50, 0.50),
}

# Words the parser accepts for a colour, mapped to its canonical name in COLOURS.
COLOUR_SYNONYMS: dict[str, str] = {
    "grey": "gray",
}

# Colour paraphrases: two more words per colour. The parser accepts them ("a crimson cube" is a red
# cube); the tiny prior's captions use them only in its paraphrase templates, beside the synonyms above.
COLOUR_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet"),
    "orange": ("tangerine", "amber"),
    "yellow": ("lemon", "golden"),
    "green": ("emerald", "lime"),
    "blue": ("navy", "azure"),
    "purple": ("violet", "lilac"),
    "pink": ("rose", "salmon"),
    "brown": ("chocolate", "tan"),
    "white": ("ivory", "snow white"),
    "black": ("jet black", "ebony"),
    "gray": ("silver", "ash"),
}
# joined without spaces, as the parser joins adjacent words ("snow white" -> "snowwhite")
_PARAPHRASE_LOOKUP = {word.replace(" ", ""): colour for colour, words in COLOUR_PARAPHRASES.items() for word in words}

# The colour used when a prompt names a shape but no colour ("a chair" -> "a gray chair").
DEFAULT_COLOUR = "gray"

# Fixed colours of secondary parts (mushroom stem, tree trunk, house roof, ...). They do not
# follow the prompt, so "a red mushroom" is a red cap on an off-white stem.
ACCENTS: dict[str, RGB] = {
    "offwhite": (0.92, 0.88, 0.78),
    "bark": (0.40, 0.25, 0.12),
    "slate": (0.30, 0.32, 0.38),
    "door": (0.36, 0.21, 0.09),
    "glass": (0.60, 0.80, 0.93),
    "metal": (0.62, 0.63, 0.66),
    "charcoal": (0.10, 0.10, 0.10),
    "carrot": (0.95, 0.45, 0.08),
}


def canonical_colour(word: str) -> str | None:
    """The COLOURS key for a colour word or synonym (case-insensitive), or None."""
    word = word.strip().lower()
    word = COLOUR_SYNONYMS.get(word, _PARAPHRASE_LOOKUP.get(word.replace(" ", ""), word))
    return word if word in COLOURS else None
