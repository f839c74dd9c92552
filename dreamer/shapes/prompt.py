"""Parse a short prompt ("a red chair", "Red chair.", "a chair, red") into an `ObjectSpec`.

The vocabulary is closed: one shape (or a synonym), at most one colour, and the filler words in
`FILLER`. Any other word is an error rather than silently ignored, so a prompt the library cannot
render is never mistaken for one it can. A prompt without a colour gets `DEFAULT_COLOUR`
("a chair" -> "a gray chair").
"""

from __future__ import annotations

import re

from dreamer.errors import UserError
from dreamer.shapes.motions import MotionSpec, canonical_motion, motion_vocabulary
from dreamer.shapes.colours import COLOUR_PARAPHRASES, COLOUR_SYNONYMS, COLOURS, DEFAULT_COLOUR, canonical_colour
from dreamer.shapes.objects import OBJECTS, SHAPE_SYNONYMS, canonical_shape
from dreamer.shapes.spec import ObjectSpec, vocabulary

FILLER = frozenset({"a", "an", "the", "one", "single", "of", "coloured", "colored", "in", "colour", "color"})


def _words(prompt: str) -> list[str]:
    """Lower-case words, joining adjacent pairs that form a known word ("snow man")."""
    raw = re.findall(r"[a-z]+", prompt.lower())
    words: list[str] = []
    i = 0
    while i < len(raw):
        if i + 1 < len(raw):
            joined = raw[i] + raw[i + 1]
            if canonical_shape(joined) or canonical_colour(joined):
                words.append(joined)
                i += 2
                continue
        words.append(raw[i])
        i += 1
    return words


def _sort_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(canonical shapes, canonical colours, unknown words) among `words`, in order."""
    shapes = [s for s in map(canonical_shape, words) if s]
    colours = [c for c in map(canonical_colour, words) if c]
    unknown = [w for w in words if w not in FILLER and not canonical_shape(w) and not canonical_colour(w)]
    return shapes, colours, unknown


def parse_prompt(prompt: str) -> ObjectSpec:
    """The `ObjectSpec` a prompt names; `UserError` (one line, with the vocabulary) otherwise."""
    shown = " ".join(prompt.split())
    words = _words(prompt)
    if not words:
        raise UserError(f"empty prompt: describe one object such as 'a red chair'; {vocabulary()}")
    shapes, colours, unknown = _sort_words(words)
    distinct_shapes, distinct_colours = list(dict.fromkeys(shapes)), list(dict.fromkeys(colours))
    if len(distinct_shapes) > 1:
        problem = f"names {len(distinct_shapes)} shapes ({', '.join(distinct_shapes)}); describe one object"
    elif len(distinct_colours) > 1:
        problem = f"names {len(distinct_colours)} colours ({', '.join(distinct_colours)}); give one colour"
    elif unknown:
        problem = f"is outside the shape library (unknown word{'s' if len(unknown) > 1 else ''} "
        problem += ", ".join(map(repr, unknown)) + ")"
    elif not shapes:
        problem = "is outside the shape library (no shape named)"
    else:
        return ObjectSpec(shapes[0], colours[0] if colours else DEFAULT_COLOUR)
    raise UserError(f"prompt {shown!r} {problem}: {vocabulary()}")


# Words that may go with a motion ("bouncing up and down", "sliding from side to side").
MOTION_FILLER = frozenset({"up", "and", "down", "side", "to", "from", "around", "round", "in", "place", "back",
                           "forth", "left", "right", "is", "slowly", "gently", "while"})


def parse_motion_prompt(prompt: str) -> MotionSpec:
    """The `MotionSpec` of "<colour> <shape> <motion>" ("a red cube bouncing", "a bouncing red cube",
    "a red box hopping up and down"); no motion word gives the "still" motion. `UserError` (one line,
    with the vocabulary and the motions) otherwise."""
    shown = " ".join(prompt.split())
    words = _words(prompt)
    motions = list(dict.fromkeys(m for m in map(canonical_motion, words) if m))
    rest = [w for w in words if not canonical_motion(w) and not (motions and w in MOTION_FILLER)]
    if len(motions) > 1:
        raise UserError(f"prompt {shown!r} names {len(motions)} motions ({', '.join(motions)}); give one motion: "
                        f"{motion_vocabulary()}")
    try:
        spec = parse_prompt(" ".join(rest))
    except UserError as error:
        problem = vocabulary_problem(" ".join(rest)) or str(error)
        raise UserError(f"prompt {shown!r} is outside the animated shape library ({problem}): {vocabulary()}; "
                        f"{motion_vocabulary()}") from None
    return MotionSpec(spec, motions[0] if motions else "still")


def without_motion(prompt: str) -> str:
    """`prompt` with its motion words (and the words that go with them) left out."""
    words = _words(prompt)
    moving = any(canonical_motion(w) for w in words)
    return " ".join(w for w in words if not canonical_motion(w) and not (moving and w in MOTION_FILLER))


def static_prompt(prompt: str) -> str:
    """What an image prior gets of a 4D prompt: its object ("a red cube bouncing" -> "a red cube"), or, outside the
    animated library, the prompt without its motion words."""
    try:
        return parse_motion_prompt(prompt).spec.prompt
    except UserError:
        return without_motion(prompt)


def unknown_words(prompt: str) -> list[str]:
    """The words of `prompt` that are neither a shape, a colour (or their synonyms) nor filler."""
    return _sort_words(_words(prompt))[2]


def known_vocabulary() -> str:
    """What the embedded priors know, in one line: the shapes and colours with their synonyms."""
    colour_words = [*COLOUR_SYNONYMS, *(w for words in COLOUR_PARAPHRASES.values() for w in words)]
    return (f"{len(OBJECTS)} shapes ({', '.join(OBJECTS)}; also {', '.join(SHAPE_SYNONYMS)}) and "
            f"{len(COLOURS)} colours ({', '.join(COLOURS)}; also {', '.join(colour_words)})")


def vocabulary_problem(prompt: str) -> str | None:
    """Why `prompt` is not a shape-library prompt (unknown words, no shape, two shapes, ...), or None."""
    try:
        parse_prompt(prompt)
    except UserError:
        shapes, colours, unknown = (list(dict.fromkeys(group)) for group in _sort_words(_words(prompt)))
        if unknown:
            return f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
        if len(shapes) > 1:
            return f"{len(shapes)} shapes ({', '.join(shapes)}) where one object is known"
        if len(colours) > 1:
            return f"{len(colours)} colours ({', '.join(colours)}) where one is known"
        return "no shape named"
    return None


def motion_vocabulary_problem(prompt: str) -> str | None:
    """Why `prompt` is not an animated-library prompt ("<colour> <shape> <motion>"), or None."""
    try:
        parse_motion_prompt(prompt)
    except UserError:
        words = _words(prompt)
        motions = list(dict.fromkeys(m for m in map(canonical_motion, words) if m))
        if len(motions) > 1:
            return f"{len(motions)} motions ({', '.join(motions)}) where one is known"
        rest = [w for w in words if not canonical_motion(w) and not (motions and w in MOTION_FILLER)]
        return vocabulary_problem(" ".join(rest)) or "no shape named"
    return None


def known_motion_vocabulary() -> str:
    """What the animated library knows, in one line: shapes, colours, and motions with their synonyms."""
    from dreamer.shapes.motions import MOTION_WORDS, MOTIONS

    synonyms = [w for w, name in MOTION_WORDS.items() if w != name]
    return f"{known_vocabulary()}, moving by one of {len(MOTIONS)} motions ({', '.join(MOTIONS)}; also {', '.join(synonyms)})"
